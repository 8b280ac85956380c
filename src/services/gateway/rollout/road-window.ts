import type {Protocol} from '../../backends/transports.js';
import {ROAD_BUCKETS_MS, bucketIndex} from './judge.js';
import {MAX_WINDOW_SECONDS} from './settings.js';

/** Calls of one road: `buckets` counts calls per ROAD_BUCKETS_MS bucket (not cumulative). */
export interface RoadCounts {
  calls: number;
  failures: number;
  buckets: number[];
}

export type RoadsCounts = Record<Protocol, RoadCounts>;

export function emptyCounts(): RoadCounts {
  return {calls: 0, failures: 0, buckets: ROAD_BUCKETS_MS.map(() => 0)};
}

export function emptyRoads(): RoadsCounts {
  return {grpc: emptyCounts(), http: emptyCounts()};
}

/** Adds `from` into `into`. */
export function addCounts(into: RoadCounts, from: RoadCounts): void {
  into.calls += from.calls;
  into.failures += from.failures;
  from.buckets.forEach((count, index) => (into.buckets[index] += count));
}

function count(into: RoadCounts, failed: boolean, seconds: number): void {
  into.calls++;
  if (failed) into.failures++;
  into.buckets[bucketIndex(seconds * 1000)]++;
}

interface Slot {
  second: number;
  roads: RoadsCounts;
}

/**
 * The calls of one backend's two roads: per 1-second slot over the last MAX_WINDOW_SECONDS (a ring,
 * so memory is bounded), read over any window up to that; and totals since start.
 */
export class RoadWindow {
  private readonly slots: Array<Slot | undefined> = new Array(MAX_WINDOW_SECONDS);
  private readonly sinceStart = emptyRoads();

  constructor(private readonly now: () => number = Date.now) {}

  record(protocol: Protocol, failed: boolean, seconds: number): void {
    const second = Math.floor(this.now() / 1000);
    const index = second % MAX_WINDOW_SECONDS;
    let slot = this.slots[index];
    if (slot?.second !== second) slot = this.slots[index] = {second, roads: emptyRoads()};
    count(slot.roads[protocol], failed, seconds);
    count(this.sinceStart[protocol], failed, seconds);
  }

  /** The calls of the last `windowSeconds` seconds, this one included. */
  window(windowSeconds: number): RoadsCounts {
    const sum = emptyRoads();
    const oldest = Math.floor(this.now() / 1000) - Math.min(windowSeconds, MAX_WINDOW_SECONDS);
    for (const slot of this.slots) {
      if (slot === undefined || slot.second <= oldest) continue;
      addCounts(sum.grpc, slot.roads.grpc);
      addCounts(sum.http, slot.roads.http);
    }
    return sum;
  }

  totals(): RoadsCounts {
    return structuredClone(this.sinceStart);
  }

  /** Forgets the window (not the totals): a road given back its share is judged on new calls only. */
  clearWindow(): void {
    this.slots.fill(undefined);
  }
}
