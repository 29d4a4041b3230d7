/** Types of `cluster-key-slot` (a dependency of ioredis; it ships none): Redis Cluster's CRC16 slot of a key. */
declare module 'cluster-key-slot' {
  /** The slot (0..16383) of `key`, honouring a `{hash tag}`. */
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    /** The common slot of `keys`, or -1 when they span several. */
    function generateMulti(keys: (string | Buffer)[]): number;
  }
  export = calculateSlot;
}
