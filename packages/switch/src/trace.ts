/**
 * Trace records the boxes (Fig. 5 numbers) and function steps that made one decision. The packet loop
 * passes no trace (null) and builds no strings; explain passes one.
 */
export class Trace {
  readonly steps: string[] = [];
  add(step: string): void {
    this.steps.push(step);
  }
  toString(): string {
    return this.steps.join(' → ');
  }
}
