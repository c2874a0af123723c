/**
 * The forms in which an upstream can echo a secret, computed once per vault value.
 * The redactor's scanner also reads through `%XX` and `\uXXXX` escapes and line breaks
 * (see scan.ts), so a form needs listing only where that reading cannot reach it.
 */
export interface SecretForm {
  text: string;
  /**
   * A base64 core: the characters that depend on the secret alone. One or two
   * characters on each side mix its first and last bits with its neighbours', and
   * are redacted with it.
   */
  base64: boolean;
}

/** The base64 characters (both alphabets) and padding, which a core's fringe may take. */
export const BASE64_CHAR = /[A-Za-z0-9+/\-_=]/;

/**
 * The secret as sent, JSON-escaped, hex in both cases, percent-encoded (what the
 * scanner cannot decode: non-ASCII bytes, either case), and base64 and base64url at
 * each of the three alignments it can have inside a longer encoded value, so that
 * `Basic base64(user:secret)` is caught whatever the user name's length.
 */
export function secretForms(value: string): SecretForm[] {
  const bytes = Buffer.from(value, 'utf8');
  const hex = bytes.toString('hex');
  const percent = encodeURIComponent(value);
  const plain = [value, JSON.stringify(value).slice(1, -1), hex, hex.toUpperCase(), percent, percent.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())];
  const forms: SecretForm[] = plain.map((text) => ({ text, base64: false }));
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    // Characters whose six bits all come from the secret's bytes.
    const core = encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + bytes.length)) / 6));
    forms.push({ text: core, base64: true }, { text: core.replace(/\+/g, '-').replace(/\//g, '_'), base64: true });
  }
  const seen = new Set<string>();
  return forms.filter((f) => f.text.length > 0 && !seen.has(f.text) && seen.add(f.text));
}
