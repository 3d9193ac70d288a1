// Package sandbox holds local stand-ins for Chatra's and Planfix's APIs, for tests, the dev
// stack and the demo. Production never starts it.
package sandbox
