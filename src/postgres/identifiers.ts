/** Quote an identifier the way PostgreSQL's quote_ident does: always safe to splice into SQL. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteQualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/**
 * Split `schema.table` / `"Odd Schema"."Mixed-Case"` as PostgreSQL prints them into raw
 * names. Unquoted parts fold to lower case, as the server would.
 */
export function parseQualifiedName(text: string, defaultSchema = 'public'): { schema: string; name: string } {
  const parts: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === '"') {
      let out = '';
      i += 1;
      for (;;) {
        if (i >= text.length) throw new Error(`unterminated quoted identifier in ${text}`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            out += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        out += text[i];
        i += 1;
      }
      parts.push(out);
    } else {
      const end = text.indexOf('.', i);
      const raw = end === -1 ? text.slice(i) : text.slice(i, end);
      parts.push(raw.toLowerCase());
      i = end === -1 ? text.length : end;
    }
    if (text[i] === '.') i += 1;
    else if (i < text.length) throw new Error(`unexpected "${text[i]}" in ${text}`);
  }
  if (parts.length === 1) return { schema: defaultSchema, name: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, name: parts[1]! };
  throw new Error(`not a table name: ${text}`);
}
