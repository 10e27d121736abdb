/**
 * Text for a person's terminal. File names and labels come from the user's disk and may hold
 * control characters: an ESC sequence in a name would recolour or retitle the terminal, a CR
 * would overwrite the line. Every control character but newline and tab is shown escaped instead.
 */
// C0 controls but \t and \n, DEL, and the C1 controls (which some terminals also obey).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

export function printable(text: string): string {
  return text.replace(CONTROL, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
