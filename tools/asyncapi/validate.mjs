// Validates AsyncAPI documents with the official parser; exits 1 on any error or warning diagnostic.
//   node tools/asyncapi/validate.mjs asyncapi/clinic.asyncapi.json
import { readFile } from 'node:fs/promises';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node validate.mjs FILE...');
  process.exit(2);
}
const names = { [DiagnosticSeverity.Error]: 'error', [DiagnosticSeverity.Warning]: 'warning', [DiagnosticSeverity.Information]: 'info', [DiagnosticSeverity.Hint]: 'hint' };
const parser = new Parser();
let failed = false;
for (const file of files) {
  const { document, diagnostics } = await parser.parse(await readFile(file, 'utf8'), { source: file });
  const blocking = diagnostics.filter((d) => d.severity <= DiagnosticSeverity.Warning);
  for (const d of diagnostics) {
    const where = d.path.length ? d.path.join('.') : '(document)';
    console.error(`${file}: ${names[d.severity]} ${d.code} at ${where}: ${d.message}`);
  }
  if (!document || blocking.length > 0) {
    failed = true;
  } else {
    console.log(`${file}: valid AsyncAPI ${document.version()} (${document.channels().length} channels, ${document.operations().length} operations, ${document.messages().length} messages; 0 errors, 0 warnings)`);
  }
}
process.exit(failed ? 1 : 0);
