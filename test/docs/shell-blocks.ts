/** The shell blocks of a Markdown document and the `thaw` commands in them (for the README tests). */

export interface ShellBlock {
  /** 1-based line of the opening fence. */
  line: number;
  text: string;
}

/** Fenced blocks tagged bash, sh or shell. */
export function shellBlocks(markdown: string): ShellBlock[] {
  const blocks: ShellBlock[] = [];
  let open: { line: number; lines: string[] } | undefined;
  markdown.split('\n').forEach((l, i) => {
    if (open === undefined) {
      if (/^```(bash|sh|shell)\s*$/.test(l)) open = { line: i + 1, lines: [] };
    } else if (/^```\s*$/.test(l)) {
      blocks.push({ line: open.line, text: open.lines.join('\n') });
      open = undefined;
    } else open.lines.push(l);
  });
  return blocks;
}

/** Splits one shell line into words: single and double quotes, backslash escapes; stops at an unquoted `#`. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line.charAt(i);
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word = (word ?? '') + line.charAt(++i);
      else word = (word ?? '') + c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && i + 1 < line.length) word = (word ?? '') + line.charAt(++i);
    else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === '#' && word === undefined) break;
    else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The argv of every `npx thaw ...` (or `thaw ...`) command of a block, without a trailing `&`. */
export function thawCommands(block: string): string[][] {
  const joined = block.replace(/\\\n/g, ' ');
  const commands: string[][] = [];
  for (const line of joined.split('\n')) {
    let current: string[] = [];
    const words = shellWords(line);
    const flush = (): void => {
      const start = current[0] === 'npx' && current[1] === 'thaw' ? 2 : current[0] === 'thaw' ? 1 : -1;
      if (start >= 0) commands.push(current.slice(start));
      current = [];
    };
    for (const w of words) {
      if (w === '&&' || w === ';' || w === '&' || w === '||') flush();
      else if (w.endsWith(';') && w.length > 1) {
        current.push(w.slice(0, -1));
        flush();
      } else current.push(w);
    }
    flush();
  }
  return commands;
}
