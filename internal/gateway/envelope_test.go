package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzEnvelopeFastPath checks that the fast path of the envelope format
// decodes whatever it takes exactly as encoding/json does, and that the
// answers (events or errors) of the two paths are the same.
func FuzzEnvelopeFastPath(f *testing.F) {
	for _, s := range []string{
		`[{"body":{"deviceId":"d-1","battery":0.5},"partition_key":"d-1"}]`,
		`[{"body_text":"{\"deviceId\":\"d\",\"battery\":0.","partition_key":"d"},{"body":1}]`,
		`[{"body":null},{"body_text":null},{"BODY":2},{"body":1,"body_text":"x"}]`,
		`[{"body":"x","partition_key":5},{"partition_key":"a\u00e9\n"},{"message_id":"m\u0001"}]`,
		`[{"body":[1,{"a":"}"}],"properties":{"k":"v"},"partition":1,"message_id":"m"}]`,
		`[{"body":1,"body":2,"partition_key":"a","partition_key":"b"}]`,
		`[{"body_base64":"AAE=","unknown":1},{}]`,
		`[ { "body" : true , "message_id" : "" } ]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		lim := Limits{}.withDefaults()
		fast, fastErr := decodeEnvelopesWith(body, lim, true)
		slow, slowErr := decodeEnvelopesWith(body, lim, false)
		if slowErr != nil {
			require.EqualError(t, fastErr, slowErr.Error())
			return
		}
		require.NoError(t, fastErr)
		require.Len(t, fast, len(slow))
		for i := range slow {
			require.Equal(t, string(slow[i].Body), string(fast[i].Body), "event %d body", i)
			fast[i].Body, slow[i].Body = nil, nil
			require.Equal(t, slow[i], fast[i], "event %d", i)
		}
	})
}

func TestFastEnvelopeTakesTheCommonShapes(t *testing.T) {
	for _, s := range []string{
		`{"body":{"a":1},"partition_key":"d-1"}`,
		`{"body_text":"x\ny","message_id":"m-1"}`,
		`{}`,
	} {
		_, ok := fastEnvelope([]byte(s))
		require.True(t, ok, s)
	}
	for _, s := range []string{`{"body":1,"body_text":"x"}`, `{"Body":1}`, `{"partition":1}`, `{"body_text":null}`} {
		_, ok := fastEnvelope([]byte(s))
		require.False(t, ok, s)
	}
}
