/** Sleeps that a stopping owner can cut short all at once (so a stop does not wait out a backoff). */
export class WakeableSleeps {
  private readonly wakers = new Set<() => void>();

  /** Resolves after `ms` milliseconds, or at the next wakeAll(). */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /** Ends every sleep in progress now. */
  wakeAll(): void {
    for (const wake of this.wakers) wake();
  }
}
