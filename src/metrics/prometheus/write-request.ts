import protobuf from 'protobufjs';
import snappy from 'snappyjs';
import type { Sample } from '../samples.js';

/** prometheus/prompb types.proto, remote write 1.0: only the fields a sender fills. */
const root = protobuf.Root.fromJSON({
  nested: {
    prometheus: {
      nested: {
        WriteRequest: { fields: { timeseries: { rule: 'repeated', type: 'TimeSeries', id: 1 } } },
        TimeSeries: {
          fields: {
            labels: { rule: 'repeated', type: 'Label', id: 1 },
            samples: { rule: 'repeated', type: 'Sample', id: 2 },
          },
        },
        Label: { fields: { name: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        Sample: { fields: { value: { type: 'double', id: 1 }, timestamp: { type: 'int64', id: 2 } } },
      },
    },
  },
});
export const WriteRequest = root.lookupType('prometheus.WriteRequest');

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export interface TimeSeries {
  labels: { name: string; value: string }[];
  samples: { value: number; timestamp: number }[];
}

/**
 * Group samples into series: labels sorted by name (the spec requires it), empty values
 * dropped, samples in time order, extra labels (e.g. `job`) added to every series.
 */
export function toTimeSeries(samples: Sample[], extraLabels: Record<string, string> = {}): TimeSeries[] {
  const series = new Map<string, TimeSeries>();
  for (const s of samples) {
    const all: Record<string, string> = { ...extraLabels, ...s.labels, __name__: s.name };
    const labels = Object.entries(all)
      .filter(([, v]) => v !== '')
      .map(([name, value]) => {
        if (!LABEL_NAME.test(name)) throw new Error(`invalid label name "${name}"`);
        return { name, value };
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const key = JSON.stringify(labels);
    const ts = series.get(key) ?? { labels, samples: [] };
    ts.samples.push({ value: s.value, timestamp: s.timestampMs });
    series.set(key, ts);
  }
  for (const ts of series.values()) ts.samples.sort((a, b) => a.timestamp - b.timestamp);
  return [...series.values()];
}

/** Protobuf `WriteRequest`, snappy block format (not framed), as remote write 1.0 wants. */
export function encodeWriteRequest(series: TimeSeries[]): Buffer {
  const message = WriteRequest.fromObject({ timeseries: series });
  const raw = WriteRequest.encode(message).finish();
  return Buffer.from(snappy.compress(Buffer.from(raw)));
}

export function decodeWriteRequest(body: Buffer): TimeSeries[] {
  const raw = snappy.uncompress(body);
  const decoded = WriteRequest.toObject(WriteRequest.decode(raw), { longs: Number, defaults: true }) as { timeseries: TimeSeries[] };
  return decoded.timeseries;
}
