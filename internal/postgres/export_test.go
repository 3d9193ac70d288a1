package postgres

// RunJanitor is runJanitor, for the external tests.
var RunJanitor = runJanitor
