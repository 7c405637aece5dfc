package telemetry_test

import (
	"io"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/telemetry"
)

func TestFeedLagIsExported(t *testing.T) {
	t.Parallel()
	m := telemetry.NewMetrics()
	m.FeedLag.WithLabelValues("views", "orders", "3").Set(42)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	require.Contains(t, string(body), "# TYPE sluice_feed_lag_changes gauge")
	require.Contains(t, string(body), `sluice_feed_lag_changes{container="orders",function="views",range="3"} 42`)
}
