// Package settings is lbkit's one reader of INI files. It reads two kinds, each by its own
// rules (docs/settings.md):
//
//   - X-Road's system properties, /etc/xroad/conf.d/*.ini (LoadXRoad), exactly as X-Road's
//     SystemPropertiesLoader reads them with Apache Commons Configuration's INI format:
//     ";" or "#" after whitespace starts an inline comment, values may be quoted ("…" or '…',
//     a backslash escapes the quote), a trailing "\" continues a value on the next line, and
//     keys we do not know are ignored, as X-Road ignores them.
//   - lbkit's own files: conf.d/lbagent.ini and conf.d/node.ini (LoadLbagent) and lbadapter's
//     cluster config (ParseCluster, used by lbadapters.Load). The same syntax, with these
//     differences: only "=" separates a key from its value, ";" or "#" also starts a comment
//     at the start of a value (so "key =   ; note" is empty), a key set twice in one section is
//     an error, and every section and key must be known: a typo is an error that names the
//     file and line and suggests the nearest known name. Values are checked against their
//     type and range when the file is read.
//
// Every error names the file and the line.
package settings
