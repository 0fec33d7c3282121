/** `2026_01` .. `2027_08` inclusive. */
export function monthsBetween(from: string, to: string): string[] {
  const [fy, fm] = from.split('_').map(Number) as [number, number];
  const [ty, tm] = to.split('_').map(Number) as [number, number];
  const out: string[] = [];
  for (let i = fy * 12 + fm - 1; i <= ty * 12 + tm - 1; i += 1) out.push(`${Math.floor(i / 12)}_${String((i % 12) + 1).padStart(2, '0')}`);
  return out;
}
