// Package activities holds every side effect of a conversation: Planfix calls, Chatra
// calls and store writes. Activities are methods on Activities, which holds the clients
// and the store; workflows name them through a typed nil (var a *Activities; a.X).
package activities

import (
	"log/slog"

	"github.com/chatrabridge/chatrabridge/internal/postgres"
)

// Activities holds what the activities need. It is safe for concurrent use.
type Activities struct {
	DB     *postgres.DB
	Logger *slog.Logger
}

// New returns the activities over the store.
func New(db *postgres.DB, logger *slog.Logger) *Activities {
	return &Activities{DB: db, Logger: logger}
}
