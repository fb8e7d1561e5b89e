/** A count for a message a person reads: 16,777,216 rather than 16777216. */
export const formatCount = (n: number): string => n.toLocaleString('en-US');
