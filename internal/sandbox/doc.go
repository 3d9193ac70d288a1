// Package sandbox is a test double: local, in-memory stand-ins for Chatra's and Planfix's
// REST APIs (the calls in docs/CHATRA.md and docs/PLANFIX.md, with their paths, auth
// checks, payloads, error bodies and Planfix's one-request-per-second limit), for tests,
// `chatrabridge dev` and the demo. Nothing it holds is real and nothing it does reaches
// Chatra or Planfix.
//
// Chatra and Planfix are the two stand-ins as http.Handlers; Server puts both behind one
// HTTP server (Chatra under /chatra, Planfix under /planfix) with an inspection API and
// fault injection by rate (latency, 5xx, 429, timeouts, resets) under /_sandbox.
//
// Production code never imports it: only the dev command's wiring (internal/app), the
// demo and tests do, and a test of this package checks that.
package sandbox
