import type { PeerKey } from '../protocol/peer-id.js';

/**
 * Who wants to hear about whom. Online interest is one-shot (removed when the
 * peer next comes online); offline interest lasts until unsubscribe, as NetBird
 * clients expect.
 */
export class PeerInterest<Subscriber> {
  // target → subscriber → whether online interest is still armed
  readonly #byTarget = new Map<PeerKey, Map<Subscriber, boolean>>();
  readonly #bySubscriber = new Map<Subscriber, Set<PeerKey>>();

  /** Number of peers `subscriber` holds interest in. */
  countFor(subscriber: Subscriber): number {
    return this.#bySubscriber.get(subscriber)?.size ?? 0;
  }

  subscribe(subscriber: Subscriber, target: PeerKey): void {
    let subscribers = this.#byTarget.get(target);
    if (!subscribers) {
      subscribers = new Map();
      this.#byTarget.set(target, subscribers);
    }
    subscribers.set(subscriber, true);
    let targets = this.#bySubscriber.get(subscriber);
    if (!targets) {
      targets = new Set();
      this.#bySubscriber.set(subscriber, targets);
    }
    targets.add(target);
  }

  unsubscribe(subscriber: Subscriber, target: PeerKey): void {
    const subscribers = this.#byTarget.get(target);
    if (subscribers?.delete(subscriber) && subscribers.size === 0) this.#byTarget.delete(target);
    const targets = this.#bySubscriber.get(subscriber);
    if (targets?.delete(target) && targets.size === 0) this.#bySubscriber.delete(subscriber);
  }

  removeSubscriber(subscriber: Subscriber): void {
    const targets = this.#bySubscriber.get(subscriber);
    if (!targets) return;
    for (const target of targets) {
      const subscribers = this.#byTarget.get(target);
      if (subscribers?.delete(subscriber) && subscribers.size === 0) this.#byTarget.delete(target);
    }
    this.#bySubscriber.delete(subscriber);
  }

  /** Subscribers to tell that `target` came online; their online interest is used up. */
  takeOnlineInterest(target: PeerKey): Subscriber[] {
    const subscribers = this.#byTarget.get(target);
    if (!subscribers) return [];
    const armed: Subscriber[] = [];
    for (const [subscriber, onlineArmed] of subscribers) {
      if (!onlineArmed) continue;
      armed.push(subscriber);
      subscribers.set(subscriber, false);
    }
    return armed;
  }

  /** Subscribers to tell that `target` went offline (interest stays). */
  offlineInterest(target: PeerKey): Subscriber[] {
    const subscribers = this.#byTarget.get(target);
    return subscribers ? [...subscribers.keys()] : [];
  }
}
