import { randomUUID } from 'node:crypto';

/**
 * An object property whose JSON is written once, from data already in order, and spliced into
 * every document that holds it: a verification's row counts at 50,000 tables were an object of
 * 50,000 keys (70 ms and 9 MiB to build), then written out twice (the record, the CLI's --json),
 * all after pg_restore --list had ended. The property still reads as the object: it is built on
 * first read, so anything that reads it, or serializes it with plain JSON.stringify (the Lambda
 * runtime), sees the same value, only later.
 */
const prepared = new WeakMap<object, Map<string, string>>();
/** Whether any property was ever prepared: until then every document is written as JSON.stringify writes it, with no replacer called per key. */
let anyPrepared = false;

/**
 * Makes `target[key]` the value that `json` is the JSON of (exactly JSON.stringify(value, null,
 * 2)), built by `make` on first read. `key` must already be a property of `target` (it keeps its
 * place among the others, and so in the JSON).
 */
export function prepareProperty<T extends object, K extends keyof T & string>(target: T, key: K, json: string, make: () => T[K]): void {
  if (!Object.prototype.hasOwnProperty.call(target, key)) throw new Error(`prepareProperty: ${key} is not a property yet`);
  let value: T[K] | undefined;
  let made = false;
  Object.defineProperty(target, key, {
    enumerable: true,
    configurable: true,
    get: () => {
      if (!made) {
        value = make();
        made = true;
      }
      return value;
    },
  });
  anyPrepared = true;
  const keys = prepared.get(target) ?? new Map<string, string>();
  keys.set(key, json);
  prepared.set(target, keys);
}

/**
 * JSON.stringify(value, null, 2), with each prepared property's JSON put in its place instead of
 * its value being built and written out. The same text as JSON.stringify gives.
 */
export function stringifyPrepared(value: unknown): string {
  if (!anyPrepared) return JSON.stringify(value, null, 2);
  const splices = new Map<string, string>();
  const text = JSON.stringify(
    value,
    function (this: unknown, _key: string, v: unknown) {
      const keys = v !== null && typeof v === 'object' ? prepared.get(v) : undefined;
      if (!keys) return v;
      // A copy with each prepared property standing as a string nobody else can write: read
      // from its descriptor, so its value is not built. toJSON is not looked at again on the
      // copy; an object with a prepared property has none.
      const copy = Object.create(null) as Record<string, unknown>;
      for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(v))) {
        if (!d.enumerable) continue;
        const json = keys.get(name);
        if (json === undefined) copy[name] = d.get ? d.get.call(v) : d.value;
        else {
          const marker = `\u0000${randomUUID()}`;
          splices.set(JSON.stringify(marker), json);
          copy[name] = marker;
        }
      }
      return copy;
    },
    2,
  );
  if (text === undefined || splices.size === 0) return text;
  let out = text;
  for (const [quoted, json] of splices) {
    const at = out.indexOf(quoted);
    // The property's line starts with its depth's indentation: each line of its JSON after the
    // first gets the same (JSON escapes every line break inside a string, so each '\n' in it is
    // between two of its lines).
    const lineStart = out.lastIndexOf('\n', at) + 1;
    let indent = 0;
    while (out.charCodeAt(lineStart + indent) === 0x20) indent += 1;
    const placed = indent === 0 ? json : json.replaceAll('\n', `\n${' '.repeat(indent)}`);
    out = out.slice(0, at) + placed + out.slice(at + quoted.length);
  }
  return out;
}
