package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// maxReadings bounds the readings of one submit request.
const maxReadings = 1000

// result is the answer to an invocation: a value for each output binding,
// by its name in function.json, and lines for Sluice to log.
type result struct {
	Outputs map[string]any `json:"Outputs"`
	Logs    []string       `json:"Logs,omitempty"`
}

// httpOutput is the value of an http output binding: the body is sent as
// JSON text, a string, with its Content-Type.
func httpOutput(status int, body any) map[string]any {
	text, err := json.Marshal(body)
	if err != nil {
		status, text = 500, []byte(`{"error":"the answer cannot be encoded"}`)
	}
	return map[string]any{"statusCode": status, "headers": map[string]string{"Content-Type": "application/json"}, "body": string(text)}
}

func httpError(status int, format string, args ...any) result {
	return result{Outputs: map[string]any{"res": httpOutput(status, map[string]string{"error": fmt.Sprintf(format, args...)})}}
}

// submit (httpTrigger POST /api/submit) checks one reading or an array of
// them and sends each as an event to the telemetry hub (eventHub output
// "telemetry"). All readings of one request go to the same partition, in
// order.
func (a *app) submit(_ context.Context, inv invocation) (result, error) {
	var req httpRequest
	if err := json.Unmarshal(inv.Data["req"], &req); err != nil {
		return result{}, fmt.Errorf("decode Data.req: %w", err)
	}
	body, err := req.body()
	if err != nil {
		return httpError(400, "%v; send a reading or an array of them as JSON", err), nil
	}
	items := []json.RawMessage{body}
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		if err := json.Unmarshal(body, &items); err != nil {
			return httpError(400, "%v", err), nil
		}
	}
	if len(items) == 0 || len(items) > maxReadings {
		return httpError(400, "send 1 to %d readings, not %d", maxReadings, len(items)), nil
	}
	for i, it := range items {
		if _, err := parseReading(it); err != nil {
			return httpError(400, "reading %d: %v", i, err), nil
		}
	}
	return result{Outputs: map[string]any{
		"telemetry": items, // one event per element, its body the reading as sent
		"res":       httpOutput(202, map[string]int{"accepted": len(items)}),
	}}, nil
}

// ingest (eventHubTrigger on telemetry, cardinality many) decodes a batch
// of readings and upserts each device's newest one into the devices
// container (cosmosDB output "devices"). Readings that cannot be decoded
// are logged and skipped: failing the function would only deliver the
// same batch again.
func (a *app) ingest(_ context.Context, inv invocation) (result, error) {
	bodies, err := eventBodies(inv.Data["events"])
	if err != nil {
		return result{}, fmt.Errorf("decode Data.events: %w", err)
	}
	var enqueued []string
	if err := decodeArray(inv.Metadata["EnqueuedTimeUtcArray"], &enqueued); err != nil || len(enqueued) != len(bodies) {
		return result{}, fmt.Errorf("Metadata.EnqueuedTimeUtcArray: %d times for %d events (%v)", len(enqueued), len(bodies), err)
	}
	var sequences []int64
	if err := decodeArray(inv.Metadata["SequenceNumberArray"], &sequences); err != nil || len(sequences) != len(bodies) {
		return result{}, fmt.Errorf("Metadata.SequenceNumberArray: %d numbers for %d events (%v)", len(sequences), len(bodies), err)
	}
	var partition struct{ PartitionId string }
	if err := json.Unmarshal(inv.Metadata["PartitionContext"], &partition); err != nil {
		return result{}, fmt.Errorf("Metadata.PartitionContext: %w", err)
	}

	var logs []string
	latest := map[string]device{}
	var order []string // device ids in the order first seen
	for i, b := range bodies {
		r, err := parseReading(b)
		if err != nil {
			logs = append(logs, fmt.Sprintf("partition %s, sequence number %d: skipped: %v", partition.PartitionId, sequences[i], err))
			continue
		}
		if r.Time == "" {
			r.Time = utcTime(enqueued[i])
		}
		d := newDevice(r)
		cur, seen := latest[d.ID]
		if !seen {
			order = append(order, d.ID)
		}
		if !seen || newer(d.Time, cur.Time) {
			latest[d.ID] = d
		}
	}
	docs := make([]device, 0, len(order))
	for _, id := range order {
		docs = append(docs, latest[id])
	}
	logs = append(logs, fmt.Sprintf("partition %s: %d events, %d devices updated", partition.PartitionId, len(bodies), len(docs)))
	return result{Outputs: map[string]any{"devices": docs}, Logs: logs}, nil
}

// device (httpTrigger GET /api/devices/{id}) answers with the device's
// document, read through the Sluice API.
func (a *app) device(ctx context.Context, inv invocation) (result, error) {
	var req httpRequest
	if err := json.Unmarshal(inv.Data["req"], &req); err != nil {
		return result{}, fmt.Errorf("decode Data.req: %w", err)
	}
	id := req.Params["id"]
	if !deviceIDs.MatchString(id) {
		return httpError(400, "%q is not a device id", id), nil
	}
	doc, err := a.store.read(ctx, "devices", id, id)
	switch {
	case errors.Is(err, errNotFound):
		return httpError(404, "device %s has sent no reading", id), nil
	case err != nil:
		return httpError(502, "%v", err), nil
	}
	return result{Outputs: map[string]any{"res": httpOutput(200, doc)}}, nil
}

// report (timerTrigger, every 10 seconds) summarises the devices container
// into the document "latest" of the reports container (cosmosDB output
// "summary").
func (a *app) report(ctx context.Context, inv invocation) (result, error) {
	var tick struct{ IsPastDue bool }
	if err := json.Unmarshal(inv.Data["tick"], &tick); err != nil {
		return result{}, fmt.Errorf("decode Data.tick: %w", err)
	}
	bodies, err := a.store.queryAll(ctx, "devices", "SELECT * FROM c")
	if err != nil {
		return result{}, err // the invocation fails; the next tick tries again
	}
	s := summary{ID: "latest", Kind: "summary", LowBattery: []string{}, GeneratedAt: utcNow(inv)}
	for _, b := range bodies {
		var d device
		if err := json.Unmarshal(b, &d); err != nil {
			return result{}, fmt.Errorf("a devices document: %w", err)
		}
		s.Devices++
		if d.Battery < lowBattery {
			s.LowBattery = append(s.LowBattery, d.DeviceID)
		}
		if s.Hottest == nil || d.Temperature > s.Hottest.Temperature {
			s.Hottest = &hottest{DeviceID: d.DeviceID, Temperature: d.Temperature}
		}
	}
	slices.Sort(s.LowBattery)
	line := fmt.Sprintf("%d devices, %d with a low battery", s.Devices, len(s.LowBattery))
	if tick.IsPastDue {
		line += " (this tick is late)"
	}
	return result{Outputs: map[string]any{"summary": s}, Logs: []string{line}}, nil
}
