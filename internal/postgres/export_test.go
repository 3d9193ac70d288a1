package postgres

// RunJanitor is runJanitor, for the external tests.
var RunJanitor = runJanitor

// Translate is translate, for the external tests.
var Translate = translate
