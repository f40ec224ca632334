package jetstream

import (
	"context"

	"github.com/runnel/runnel/internal/engine"
)

// DropAnswers makes e lose the answers to its appends that drop returns
// true for, as a leader change does. Set it before e is used.
func DropAnswers(e engine.Engine, drop func() bool) { e.(*Engine).replies.drop = drop }

// Resends returns how many batches e sent again, and how many of those it
// found stored by their message id.
func Resends(e engine.Engine) (resent, located int64) {
	en := e.(*Engine)
	return en.resent.Load(), en.located.Load()
}

// StreamOf returns the JetStream stream that holds the log name.
func StreamOf(ctx context.Context, e engine.Engine, name string) (string, error) {
	n, _, err := e.(*Engine).lookup(ctx, name)
	return n.stream, err
}
