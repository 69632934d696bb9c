/**
 * Runs tasks of one key one after another, tasks of different keys freely.
 * Registrations of one peer ID must reach the registry in the order the
 * sessions arrived, or a slower older one could win the fencing race.
 */
export class KeyedSerializer<Key> {
  readonly #tails = new Map<Key, Promise<unknown>>();

  run<T>(key: Key, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Resolves when every task queued so far has finished. */
  async idle(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all(this.#tails.values());
  }
}
