package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

// lossyJS loses the acknowledgement of the first send of every record
// published on a hub subject: with stored, after the engine stored the
// record (the answer is lost on its way back); without, before (the
// record is lost on its way there). Resends, recognised by their
// Nats-Msg-Id, go through.
type lossyJS struct {
	jetstream.JetStream
	stored bool

	mu   sync.Mutex
	seen map[string]bool
	lost int
}

func (l *lossyJS) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	id := msg.Header.Get(jetstream.MsgIDHeader)
	l.mu.Lock()
	first := msg.Header.Get(HeaderEvents) != "" && !l.seen[id]
	if first {
		l.seen[id] = true
		l.lost++
	}
	l.mu.Unlock()
	if !first {
		return l.JetStream.PublishMsgAsync(msg, opts...)
	}
	if l.stored {
		fut, err := l.JetStream.PublishMsgAsync(msg, opts...)
		if err != nil {
			return nil, err
		}
		// The record is stored; only its answer goes missing.
		select {
		case <-fut.Ok():
		case err := <-fut.Err():
			return nil, err
		}
	}
	return failedFuture{jetstream.ErrAsyncPublishTimeout}, nil
}

// A record whose acknowledgement was lost is sent again with its message
// id: stored once whether or not the first send was, every event at the
// position Publish answered, and the calls succeed.
func TestLostAcknowledgementIsResent(t *testing.T) {
	for _, stored := range []bool{true, false} {
		t.Run(fmt.Sprintf("stored=%v", stored), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			eng := enginetest.Embedded(t)
			lossy := &lossyJS{JetStream: eng.JS, stored: stored, seen: map[string]bool{}}
			s, err := Open(ctx, lossy, eng.MaxPayload(), Options{ReadJS: eng.JS})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
			name := enginetest.Name("h")
			_, err = s.Create(ctx, Config{Name: name, Partitions: 2})
			require.NoError(t, err)

			want := map[Position]string{}
			for c := range 12 {
				events := make([]Event, 5)
				for i := range events {
					events[i] = Event{Body: fmt.Appendf(nil, "call %d event %d", c, i), Partition: (c + i) % 2, HasPartition: true}
				}
				pos, err := s.Publish(ctx, name, events)
				require.NoError(t, err, "call %d", c)
				for i, p := range pos {
					_, dup := want[p]
					require.False(t, dup, "call %d event %d: position %v answered twice", c, i, p)
					want[p] = string(events[i].Body)
				}
			}

			lossy.mu.Lock()
			lost := lossy.lost
			lossy.mu.Unlock()
			require.Positive(t, lost)
			require.Equal(t, int64(lost), s.Resends(), "every record that lost its answer was sent again, once")

			got := map[Position]string{}
			for p := range 2 {
				str, err := eng.JS.Stream(ctx, StreamName(name, p))
				require.NoError(t, err)
				info, err := str.Info(ctx)
				require.NoError(t, err)
				for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
					raw, err := str.GetMsg(ctx, seq)
					require.NoError(t, err)
					evs, err := DecodeRecord(raw.Data, p, seq)
					require.NoError(t, err)
					for _, e := range evs {
						at := Position{Partition: p, Sequence: e.Sequence}
						require.NotContains(t, got, at)
						got[at] = string(e.Body)
					}
				}
			}
			require.Equal(t, want, got, "the hub holds each event once, at the position its publish answered")
		})
	}
}
