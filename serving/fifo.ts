/** A FIFO of bounded use: O(1) push and shift over a growable ring (Array.shift is O(n) on long queues). */
export class Fifo<T> {
  private items: (T | undefined)[] = new Array<T | undefined>(64);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(x: T): void {
    if (this.count === this.items.length) {
      const grown = new Array<T | undefined>(this.items.length * 2);
      for (let i = 0; i < this.count; i++) grown[i] = this.items[(this.head + i) % this.items.length];
      this.items = grown;
      this.head = 0;
    }
    this.items[(this.head + this.count) % this.items.length] = x;
    this.count++;
  }

  /** The oldest item, without removing it. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const x = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    return x;
  }
}
