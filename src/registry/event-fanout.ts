import type { PeerEvent, PeerEventListener } from './peer-registry.js';

/** Delivers events to listeners in emission order; a throwing listener cannot starve the others. */
export class EventFanout {
  readonly #listeners = new Set<PeerEventListener>();
  readonly #onListenerError: (err: unknown) => void;

  constructor(onListenerError: (err: unknown) => void) {
    this.#onListenerError = onListenerError;
  }

  add(listener: PeerEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(event: PeerEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
  }
}
