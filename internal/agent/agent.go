package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// Options configures an Agent.
type Options struct {
	// Config is the parsed configuration file; it must pass Validate.
	Config *Config
	// NewSink makes the sink for a flow's stream, called once per stream
	// (flows into one stream share it, with the first flow's buffering).
	NewSink func(f *Flow) (Sink, error)
	// CheckpointInterval is how often acknowledged progress is saved when
	// it moved (default 500ms). Shorter means fewer duplicates after a
	// crash and more writes.
	CheckpointInterval time.Duration
	// Logger receives the agent's log; nil discards it.
	Logger *slog.Logger
}

// Agent tails the files of a configuration's flows into their streams.
type Agent struct {
	opts  Options
	log   *slog.Logger
	flows []*flowRunner
	sinks map[string]Sink
	lock  *os.File
	mu    struct {
		sync.Mutex
		lastSaved []checkpoint
	}
}

// New checks the options, takes the checkpoint file's lock, reads it and
// makes the sinks. Nothing is read until Run, which releases the lock when
// it returns.
func New(opts Options) (*Agent, error) {
	if opts.Config == nil {
		return nil, errors.New("agent: no configuration")
	}
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.NewSink == nil {
		return nil, errors.New("agent: no sink factory")
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 500 * time.Millisecond
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{opts: opts, log: log, sinks: map[string]Sink{}}
	lock, err := lockCheckpoints(cfg.CheckpointFile)
	if err != nil {
		return nil, err
	}
	a.lock = lock
	saved, ran, err := readCheckpoints(cfg.CheckpointFile)
	if err != nil {
		lock.Close()
		return nil, err
	}
	for _, f := range cfg.Flows {
		s, ok := a.sinks[f.KinesisStream]
		if !ok {
			if s, err = opts.NewSink(f); err != nil {
				a.closeSinks(context.Background())
				lock.Close()
				return nil, fmt.Errorf("flows[%d]: %w", f.Index, err)
			}
			a.sinks[f.KinesisStream] = s
		}
		var mine []checkpoint
		for _, c := range saved {
			if c.Flow == f.ID() {
				mine = append(mine, c)
			}
		}
		a.flows = append(a.flows, newFlowRunner(f, s, a.log, mine, !slices.Contains(ran, f.ID())))
	}
	return a, nil
}

// Run tails until ctx ends, then stops reading, waits up to the
// configuration's shutdown timeout for what was read to be acknowledged
// and saves the progress. It returns an error only if it could not save
// progress at the end.
func (a *Agent) Run(ctx context.Context) error {
	defer a.lock.Close()
	cfg := a.opts.Config
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	var wg sync.WaitGroup
	for _, r := range a.flows {
		wg.Go(func() { r.run(readCtx) })
	}
	saverDone := make(chan struct{})
	stopSaver := make(chan struct{})
	go func() {
		defer close(saverDone)
		a.saveLoop(stopSaver)
	}()
	<-ctx.Done()
	wg.Wait()
	// Send what was read, for as long as the shutdown timeout allows.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	a.closeSinks(sctx)
	close(stopSaver)
	<-saverDone
	for _, r := range a.flows {
		r.close()
	}
	return a.save()
}

func (a *Agent) closeSinks(ctx context.Context) {
	var wg sync.WaitGroup
	for name, s := range a.sinks {
		wg.Go(func() {
			if err := s.Close(ctx); err != nil {
				a.log.Warn("stopped before every record read was acknowledged; they are read again at the next start", "stream", name, "error", err)
			}
		})
	}
	wg.Wait()
}

// saveLoop saves progress every CheckpointInterval while it moves.
func (a *Agent) saveLoop(stop <-chan struct{}) {
	t := time.NewTicker(a.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := a.save(); err != nil {
				a.log.Error("cannot save progress", "file", a.opts.Config.CheckpointFile, "error", err)
			}
		}
	}
}

// save writes the checkpoint file if progress moved since the last write.
func (a *Agent) save() error {
	var all []checkpoint
	for _, r := range a.flows {
		all = append(all, r.checkpoints()...)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.lastSaved != nil && slices.Equal(a.mu.lastSaved, all) {
		return nil
	}
	ids := make([]string, len(a.flows))
	for i, r := range a.flows {
		ids[i] = r.flow.ID()
	}
	if err := writeCheckpoints(a.opts.Config.CheckpointFile, ids, all); err != nil {
		return err
	}
	a.mu.lastSaved = all
	return nil
}

// FileStatus is the progress of one file (or of the unread rest of a
// truncated one).
type FileStatus struct {
	Flow, Path string
	// Lines read and records acknowledged since the agent started.
	Lines, Records uint64
	// Size is the file's size when last looked at; Acked is the offset up
	// to which every record was acknowledged; Behind = Size - Acked.
	Size, Acked, Behind int64
	Detached            bool
}

// Status returns every tracked file's progress.
func (a *Agent) Status() []FileStatus {
	var out []FileStatus
	for _, r := range a.flows {
		r.mu.Lock()
		for _, s := range r.mu.sources {
			s.mu.Lock()
			fs := FileStatus{Flow: r.flow.ID(), Path: s.mu.path, Lines: s.mu.lines, Records: s.mu.records,
				Size: s.mu.size, Acked: s.mu.ackOff, Detached: s.mu.detached}
			s.mu.Unlock()
			fs.Behind = max(fs.Size-fs.Acked, 0)
			out = append(out, fs)
		}
		r.mu.Unlock()
	}
	return out
}
