package httpsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// maxResyncs is how many full syncs in a row a Run starts again after a
// 410 Gone before it gives up.
const maxResyncs = 3

// Source reads an HTTP/JSON API's items and their changes through delta
// links. It is safe to Run once at a time.
type Source struct {
	cfg Config
	url *url.URL
	id  string // the From of positions made under cfg.URL
	// seen are the columns inferred so far: field → type ("" for only
	// null). Kept across Runs.
	seen map[string]string
	// sleep waits d or until ctx ends; now is the clock (for Retry-After
	// dates). Tests replace them.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
}

var _ pipeline.Source = (*Source)(nil)

// New returns a Source of cfg, or an error wrapping ErrInvalidConfig that
// names the field at fault. It makes no request.
func New(cfg Config) (*Source, error) {
	u, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	return &Source{cfg: cfg.withDefaults(), url: u, id: urlID(cfg.URL), seen: map[string]string{},
		sleep: sleepCtx, now: time.Now}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Run reads pages from after (from Config.URL, a full sync, when after is
// empty or was made under another URL) and hands each page with changes
// over as a batch, until ctx ends (it then returns ctx.Err()), a page
// cannot be read, or emit fails.
func (s *Source) Run(ctx context.Context, after string, emit pipeline.Emit) error {
	log := s.cfg.Logger.With(slog.String("table", s.cfg.Table))
	at := position{Link: s.cfg.URL, Phase: full, From: s.id}
	if after != "" {
		p, err := parsePosition(after)
		if err != nil {
			return err
		}
		u, _ := url.Parse(p.Link) // parsePosition checked it
		switch {
		case p.From != s.id:
			log.WarnContext(ctx, "httpsource: the position was made under another Config.URL: starting a full sync")
		case !sameOrigin(u, s.url):
			return fmt.Errorf("%w: its link is on %s, not on Config.URL's host %s", ErrBadPosition, u.Scheme+"://"+u.Host, s.url.Scheme+"://"+s.url.Host)
		default:
			at = p
		}
	}
	log.InfoContext(ctx, "httpsource: reading", slog.String("phase", string(at.Phase)), slog.Bool("resumed", at.Link != s.cfg.URL))
	n := 0
	// resyncs counts the full syncs started again (410 Gone) since the
	// last one that completed: an API that keeps expiring its links
	// would otherwise be read from the start for ever.
	resyncs := 0
	for {
		n++
		body, err := s.fetch(ctx, at.Link, n)
		if errors.Is(err, errGone) {
			if at.Link == s.cfg.URL {
				return &StatusError{Code: 410, Link: redactLink(at.Link)}
			}
			if resyncs == maxResyncs {
				return fmt.Errorf("%w: GET %s (page %d): 410 Gone again: %d full syncs in a row were cut short by expired links: check the API's link lifetime against the time a full sync takes",
					ErrUnavailable, redactLink(at.Link), n, maxResyncs+1)
			}
			log.WarnContext(ctx, "httpsource: the link has expired (410 Gone): starting a full sync again; items deleted meanwhile are not seen by it",
				slog.String("url", redactLink(at.Link)), slog.String("phase", string(at.Phase)))
			at = position{Link: s.cfg.URL, Phase: full, From: s.id}
			resyncs++
			continue
		}
		if err != nil {
			return err
		}
		p, err := s.readPage(body, at.Link, n)
		if err != nil {
			return err
		}
		changes, err := s.changes(p, at.Phase, at.Link, n)
		if err != nil {
			return err
		}
		next := position{Link: p.next, Phase: at.Phase, From: s.id}
		if p.next == "" {
			next = position{Link: p.delta, Phase: delta, From: s.id}
		}
		// An empty page is not handed over (its position would be a new
		// change set), except the last one of a full sync: its delta link
		// saves doing the sync again.
		if len(changes) > 0 || at.Phase == full && next.Phase == delta {
			b := pipeline.Batch{Changes: changes, Tables: map[string]pipeline.Table{s.cfg.Table: s.table()},
				Position: next.String(), Snapshot: at.Phase == full}
			if err := emit(ctx, b); err != nil {
				return err
			}
			log.DebugContext(ctx, "httpsource: batch", slog.Int("page", n), slog.Int("changes", len(changes)), slog.Bool("snapshot", b.Snapshot))
		}
		if at.Phase == full && next.Phase == delta {
			log.InfoContext(ctx, "httpsource: full sync done")
			resyncs = 0
		}
		at = next
		if p.next == "" {
			if err := s.sleep(ctx, s.cfg.PollInterval); err != nil {
				return err
			}
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
