package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// TestDashboardPipelines: the pipelines section lists each destination
// with the change sets applied and how far behind it is; its buttons pause
// and resume it, and replay it from a change set.
func TestDashboardPipelines(t *testing.T) {
	browser := chromium(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Pipelines: map[string]sluice.PipelineConfig{"devices": {Container: "devices", Destinations: []sluice.PipelineDestination{{Name: "copy", Container: "devices-copy"}}}}})
	app.Container(sluice.ContainerConfig{Name: "devices", PartitionKeyPath: "/id"})
	app.Container(sluice.ContainerConfig{Name: "devices-copy", PartitionKeyPath: "/id"})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	for i := range 3 {
		_, err := app.Docs().Upsert(ctx, "devices", map[string]any{"id": fmt.Sprint("d", i)})
		require.NoError(t, err)
	}

	tb := openTab(t, ctx, browser)
	run, poll := tb.run, tb.poll
	run("load the dashboard", chromedp.Navigate(app.URL()+"/"))
	row := `document.querySelector('#pipelines-table tbody tr[data-key="devices/copy"]')`
	poll("the destination listed, up to date", fmt.Sprintf(`%s && %s.querySelector('[data-col="state"]').textContent === 'up to date' && %s.querySelector('[data-col="applied"]').textContent !== '0' && %s.querySelector('[data-col="lag"]').textContent === '—' && %s.querySelector('[data-col="source-lag"]').textContent === '—'`, row, row, row, row, row))
	run("pause it", chromedp.Click(chromedp.CSS(`#pipelines-table tbody tr[data-key="devices/copy"] td:nth-child(10) button`)))
	poll("paused", fmt.Sprintf(`%s.querySelector('[data-col="state"]').textContent.startsWith('paused')`, row))
	run("resume it", chromedp.Click(chromedp.CSS(`#pipelines-table tbody tr[data-key="devices/copy"] td:nth-child(10) button`)))
	poll("resumed", fmt.Sprintf(`%s.querySelector('[data-col="state"]').textContent === 'up to date'`, row))
	run("replay from change set 1", chromedp.SendKeys(chromedp.CSS(`#pipelines-table tbody tr[data-key="devices/copy"] input`), "1"),
		chromedp.Click(chromedp.CSS(`#pipelines-table tbody tr[data-key="devices/copy"] form button`)))
	poll("the status says so", `document.querySelector('#status').textContent.includes('goes on from change set 1')`)
	tb.noExceptions()
	run("scroll to the pipelines", chromedp.Evaluate[chromedp.Void](`document.querySelector('#pipelines').scrollIntoView()`))
	tb.shot("pipelines.png")
}
