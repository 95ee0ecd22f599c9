// Validates an AsyncAPI document (a file, or a URL such as the server's
// /asyncapi.json) with the reference parser; any error-level diagnostic fails.
import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';

const source = process.argv[2];
if (!source) {
  console.error('usage: node validate.mjs <file-or-url>');
  process.exit(2);
}
const text = source.startsWith('http') ? await (await fetch(source)).text() : await readFile(source, 'utf8');
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text);
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  const level = ['error', 'warning', 'info', 'hint'][d.severity] ?? d.severity;
  console.log(`${level}: ${d.message} at ${d.path.join('.')}`);
}
if (!document || errors.length > 0) {
  console.error(`${source}: ${errors.length} error(s)`);
  process.exit(1);
}
const messages = document.allMessages().length;
const operations = document.allOperations().length;
console.log(`${source}: valid AsyncAPI ${document.version()}, ${operations} operations, ${messages} messages`);
