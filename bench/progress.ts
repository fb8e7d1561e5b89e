/** A progress line rewritten in place on a terminal; nothing when the output goes to a file or a pipe. */
export function progress(text: string): void {
  if (process.stdout.isTTY) process.stdout.write(`\r  ${text}   `);
}

/** Ends the progress line, so the next line starts clean. */
export function endProgress(): void {
  if (process.stdout.isTTY) process.stdout.write('\n');
}
