package host

// Scaled is a registered function whose backlog tells how many instances
// the work needs: a hub function (Hub and Group set) or a queue function
// (Queue set), with its settings after defaults.
type Scaled struct {
	Function string
	Hub      string
	Group    string
	Queue    string
	// TargetPerInstance is the unprocessed events or messages one
	// instance should have (HubTrigger.TargetPerInstance,
	// QueueTrigger.TargetPerInstance), at least 1.
	TargetPerInstance int
}

// Scaled lists the registered hub and queue functions, in the order
// registered. Change-feed, timer and blob functions are not listed: their
// work does not spread over more instances by a target count (feed ranges
// and blob containers have no such scaler here yet), and timers run on
// one instance.
func (h *Host) Scaled() []Scaled {
	var out []Scaled
	for _, b := range h.functions() {
		switch f := b.(type) {
		case *function:
			out = append(out, Scaled{Function: f.Name, Hub: f.Trigger.Hub, Group: f.Trigger.Group,
				TargetPerInstance: f.Trigger.TargetPerInstance})
		case *queueFunction:
			out = append(out, Scaled{Function: f.Name, Queue: f.Trigger.Queue, TargetPerInstance: f.Trigger.TargetPerInstance})
		}
	}
	return out
}
