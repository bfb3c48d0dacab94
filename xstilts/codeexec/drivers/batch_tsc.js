"use strict";
// Batch compilation for `xstilts code-eval` (xstilts/codeexec/batch.py): compiles each program folder as
// `tsc ARG...` run in that folder would — tsc's own command-line parsing, compiler host, diagnostics and exit status
// (TypeScript's public API: parseCommandLine, createProgram, emitFilesAndReportErrorsAndGetExitStatus) — one folder
// after another in this one process, so node and tsc start once per batch. Files outside the batch (lib.*.d.ts,
// @types, the test helpers' typings: read-only, the same for every program) are parsed once and shared, as the
// language service shares them between projects. A program sees no other folder of the batch: their files do not
// exist for its compile, as they do not for tsc run alone in the program's sandbox.
//
//   node batch_tsc.js TYPESCRIPT_JS RESULTS TIMEOUT_S N DIR... -- ARG...
//
// For each DIR: RESULTS/DIR.out (what tsc prints, its diagnostics), RESULTS/DIR.err, then RESULTS/DIR.exit (tsc's
// exit status). A program whose compile threw, wrote outside its folder or took longer than TIMEOUT_S gets no .exit,
// and the evaluator compiles it on its own.
const fs = require("fs");
const path = require("path");

const [typescript, results, timeoutText, countText, ...rest] = process.argv.slice(2);
const count = Number(countText);
const dirs = rest.slice(0, count);
const args = rest.slice(count + 1);
if (!(count >= 0) || rest[count] !== "--") {
  process.stderr.write("usage: node batch_tsc.js TYPESCRIPT_JS RESULTS TIMEOUT_S N DIR... -- ARG...\n");
  process.exit(2);
}
const ts = require(typescript);
const timeoutMs = Number(timeoutText) * 1000;
const batchRoot = process.cwd();
let shared = new Map();

function inside(file, folder) {
  return file === folder || file.startsWith(folder + "/");
}

function sourceKey(languageVersionOrOptions) {
  if (typeof languageVersionOrOptions !== "object") return String(languageVersionOrOptions);
  const o = languageVersionOrOptions;
  return [o.languageVersion, o.impliedNodeFormat, o.jsDocParsingMode].join(",");
}

// tsc's executeCommandLine and performCompilation (src/compiler/executeCommandLine.ts) for a command line with
// source files and no tsconfig, non-pretty output; returns [exit status, output].
function compile(folder) {
  let out = "";
  let escaped = false;
  // ts.sys remembers the first working directory it was asked for: this one answers the folder's.
  const system = Object.assign(Object.create(ts.sys), {
    write: (s) => { out += s; }, getCurrentDirectory: () => process.cwd(),
  });
  const reportDiagnostic = ts.createDiagnosticReporter(system, false);
  const commandLine = ts.parseCommandLine(args);
  if (commandLine.errors.length > 0) {
    commandLine.errors.forEach(reportDiagnostic);
    return [1, out, false];
  }
  if (commandLine.options.pretty !== false || commandLine.options.project || commandLine.options.build ||
      commandLine.fileNames.length === 0) {
    throw new Error("batch_tsc: expects source files and --pretty false, as xstilts passes them");
  }
  const currentDirectory = system.getCurrentDirectory();
  const absolute = (file) => ts.getNormalizedAbsolutePath(file, currentDirectory);
  const hidden = (file) => inside(absolute(file), batchRoot) && !inside(absolute(file), folder) &&
    absolute(file) !== batchRoot;
  const options = ts.convertToOptionsWithAbsolutePaths(commandLine.options, absolute);
  const host = ts.createCompilerHostWorker(options, undefined, system); // tsc's host, on this system
  host.jsDocParsingMode = ts.JSDocParsingMode.ParseForTypeErrors; // as performCompilation
  const own = { ...host };
  host.fileExists = (file) => !hidden(file) && own.fileExists(file);
  host.directoryExists = (dir) => !hidden(dir) && own.directoryExists(dir);
  host.readFile = (file) => (hidden(file) ? undefined : own.readFile(file));
  host.getDirectories = (dir) => (hidden(dir) ? [] : own.getDirectories(dir));
  host.writeFile = (file, ...more) => {
    if (!inside(absolute(file), folder)) {
      escaped = true;
      return;
    }
    own.writeFile(file, ...more);
  };
  host.getSourceFile = (file, languageVersionOrOptions, onError, shouldCreateNewSourceFile) => {
    if (hidden(file)) return undefined;
    if (shouldCreateNewSourceFile || inside(absolute(file), batchRoot)) {
      return own.getSourceFile(file, languageVersionOrOptions, onError, shouldCreateNewSourceFile);
    }
    const key = absolute(file) + "\0" + sourceKey(languageVersionOrOptions);
    if (!shared.has(key)) {
      shared.set(key, own.getSourceFile(file, languageVersionOrOptions, onError, shouldCreateNewSourceFile));
    }
    return shared.get(key);
  };
  const program = ts.createProgram({
    rootNames: commandLine.fileNames, options, projectReferences: commandLine.projectReferences, host,
    configFileParsingDiagnostics: ts.getConfigFileParsingDiagnostics(commandLine),
  });
  const status = ts.emitFilesAndReportErrorsAndGetExitStatus(program, reportDiagnostic,
    (s) => system.write(s + system.newLine), undefined);
  return [status, out, escaped];
}

for (const dir of dirs) {
  const folder = path.join(batchRoot, dir);
  const start = Date.now();
  let outcome;
  try {
    process.chdir(folder);
    outcome = compile(folder);
  } catch (error) {
    shared = new Map(); // nothing a failed compile may have left half-bound is reused
    outcome = null;
  } finally {
    process.chdir(batchRoot);
  }
  if (outcome === null || outcome[2] || Date.now() - start > timeoutMs) continue;
  fs.writeFileSync(path.join(results, dir + ".out"), outcome[1]);
  fs.writeFileSync(path.join(results, dir + ".err"), "");
  fs.writeFileSync(path.join(results, dir + ".exit"), outcome[0] + "\n");
}
