/** A word for a POSIX shell: as it is when it holds nothing the shell would read, else single-quoted. */
export const shellQuote = (s: string): string => (/^[A-Za-z0-9_./:@=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
