/**
 * The data path's own drop reasons (the switch counts its decisions' reasons): the `reason` label of
 * `onehost_drops_total`, in the order of `Datapath.drops`.
 */
export const DATAPATH_DROPS = [
  'no_destination',
  'too_big',
  'send_backpressure',
  'icmp_rate_limited',
] as const;

export type DatapathDrop = (typeof DATAPATH_DROPS)[number];

/** DATAPATH_DROP is each reason's index into `Datapath.drops`. */
export const DATAPATH_DROP = Object.freeze(
  Object.fromEntries(DATAPATH_DROPS.map((name, i) => [name, i])),
) as { readonly [K in DatapathDrop]: number };
