import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdSet } from '../../src/pg-archive/id-set.js';

// The archive reader's "seen" sets: a bit per dense dump id, a Set beyond. Checked against a
// Set on the ids pg_dump writes and on those someone else's archive may hold.
describe('IdSet', () => {
  it('agrees with a Set on has, add and size, for dense, huge and repeated ids', () => {
    const ours = new IdSet();
    const theirs = new Set<number>();
    const ids = [1, 2, 3, 8, 7, 9, 1, 150_005, 64, 63, 0, 2_147_483_647, (1 << 24) - 1, 1 << 24, (1 << 24) + 1, 1 << 24, 2_147_483_647, 150_005, 511, 512];
    for (const id of ids) {
      assert.equal(ours.has(id), theirs.has(id), `has ${id} before`);
      ours.add(id);
      theirs.add(id);
      assert.equal(ours.has(id), true, `has ${id} after`);
      assert.equal(ours.size, theirs.size, `size after ${id}`);
    }
    for (let id = 0; id < 1100; id += 1) assert.equal(ours.has(id), theirs.has(id), `has ${id}`);
    for (const id of [(1 << 24) + 2, 2_147_483_646, 150_004, 150_006]) assert.equal(ours.has(id), false, `${id} never added`);
  });

  it('is empty after clear', () => {
    const s = new IdSet();
    for (const id of [5, 1 << 25, 70_000]) s.add(id);
    assert.equal(s.size, 3);
    s.clear();
    assert.equal(s.size, 0);
    for (const id of [5, 1 << 25, 70_000]) assert.equal(s.has(id), false);
  });
});
