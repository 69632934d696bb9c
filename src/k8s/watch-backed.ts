import type { KubeObject, ResilientWatch } from './resilient-watch.js';

/** A view of the cluster kept by one ResilientWatch: starting, syncing, readiness and closing are the watch's. */
export abstract class WatchBacked<T extends KubeObject> {
  protected abstract readonly watch: ResilientWatch<T>;

  start(): void {
    this.watch.start();
  }

  waitForSync(): Promise<void> {
    return this.watch.waitForSync();
  }

  notReadyReason(): string | undefined {
    return this.watch.notReadyReason();
  }

  close(): Promise<void> {
    return this.watch.close();
  }
}
