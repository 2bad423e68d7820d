// Go's text/tabwriter as etcdctl's help uses it (minwidth 0, tabwidth 8, padding 1, padded with
// tabs, no flags): tab-terminated cells of consecutive lines form a column, padded with tabs to
// the column's widest cell plus one, rounded up to a tab stop. A line's last cell (not
// tab-terminated) takes no part in the layout.

const TAB_WIDTH = 8;
const PADDING = 1;

/** Width of a cell as tabwriter counts it: runes. */
const runeWidth = (s: string) => [...s].length;

export function tabwrite(text: string): string {
  const lines = text.split('\n').map((l) => l.split('\t'));
  const endsWithNewline = text.endsWith('\n');
  if (endsWithNewline) lines.pop();
  const out: string[] = [];
  const widths: number[] = [];

  const writeLines = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const cells = lines[i]!;
      let line = '';
      cells.forEach((cell, j) => {
        line += cell;
        if (j < widths.length && j < cells.length - 1) line += padding(runeWidth(cell), widths[j]!);
      });
      out.push(line);
    }
  };

  // Go's Writer.format: for the next column, each block of consecutive lines that have a cell
  // there gets one width; the columns to its right are laid out within that block.
  const format = (line0: number, line1: number) => {
    const column = widths.length;
    let start = line0;
    for (let i = line0; i < line1; i++) {
      if (column >= lines[i]!.length - 1) continue;
      writeLines(start, i);
      const blockStart = i;
      let width = 0;
      for (; i < line1 && column < lines[i]!.length - 1; i++) width = Math.max(width, runeWidth(lines[i]![column]!) + PADDING);
      widths.push(width);
      format(blockStart, i);
      widths.pop();
      start = i;
      i--;
    }
    writeLines(start, line1);
  };

  format(0, lines.length);
  return out.join('\n') + (endsWithNewline ? '\n' : '');
}

/** Tabs from the end of a cell's text to the column's next tab stop. */
function padding(textWidth: number, cellWidth: number): string {
  const width = Math.ceil(cellWidth / TAB_WIDTH) * TAB_WIDTH;
  return '\t'.repeat(Math.ceil((width - textWidth) / TAB_WIDTH));
}
