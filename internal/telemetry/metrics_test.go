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

// TestHTTPFunctionFamilies: HTTP functions have their own families, not
// the hub's with empty labels.
func TestHTTPFunctionFamilies(t *testing.T) {
	t.Parallel()
	m := telemetry.NewMetrics()
	m.HTTPFunctionRequests.WithLabelValues("products", telemetry.HTTPCodeLabel(200)).Add(3)
	m.HTTPFunctionRequests.WithLabelValues("products", telemetry.HTTPCodeLabel(503)).Inc()
	m.HTTPFunctionDuration.WithLabelValues("products").Observe(0.002)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Result().Body)
	require.NoError(t, err)
	require.Contains(t, string(body), "# TYPE sluice_http_function_requests_total counter")
	require.Contains(t, string(body), `sluice_http_function_requests_total{code="200",function="products"} 3`)
	require.Contains(t, string(body), `sluice_http_function_requests_total{code="503",function="products"} 1`)
	require.Contains(t, string(body), "# TYPE sluice_http_function_duration_seconds histogram")
	require.Contains(t, string(body), `sluice_http_function_duration_seconds_count{function="products"} 1`)
	require.NotContains(t, string(body), `hub=""`)
}
