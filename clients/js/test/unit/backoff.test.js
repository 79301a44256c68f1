import { test } from "node:test";
import assert from "node:assert/strict";
import { backoff } from "../../src/index.js";

test("backoff stays within [min, min(max, min * 2^(n+1))] and never above max", () => {
  for (let n = 0; n < 40; n++) {
    for (const r of [0, 0.25, 0.5, 0.999999]) {
      const d = backoff(n, 500, 20_000, () => r);
      assert.ok(d >= 500, `attempt ${n}: ${d} < min`);
      assert.ok(d <= 20_000, `attempt ${n}: ${d} > max`);
      assert.ok(d <= 500 + Math.min(20_000, 500 * 2 ** n), `attempt ${n}: ${d} above its window`);
    }
  }
});

test("backoff grows exponentially and spreads with full jitter", () => {
  assert.equal(backoff(0, 500, 20_000, () => 0), 500);
  assert.equal(backoff(0, 500, 20_000, () => 0.999999), 999);
  assert.equal(backoff(3, 500, 20_000, () => 0.999999), 4499);
  assert.equal(backoff(10, 500, 20_000, () => 0.5), 10_500);
  assert.equal(backoff(10, 500, 20_000, () => 0.999999), 20_000);
  const seen = new Set();
  for (let i = 0; i < 200; i++) seen.add(backoff(4, 100, 100_000));
  assert.ok(seen.size > 50, "delays of one attempt are spread out");
  for (const d of seen) assert.ok(d >= 100 && d < 100 + 1600);
});
