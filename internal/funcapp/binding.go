package funcapp

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Binding types Sluice supports, spelled as in function.json (matched in
// any case).
const (
	TypeEventHubTrigger = "eventHubTrigger"
	TypeEventHub        = "eventHub"
	TypeQueueTrigger    = "queueTrigger"
	TypeQueue           = "queue"
	TypeCosmosDBTrigger = "cosmosDBTrigger"
	TypeCosmosDB        = "cosmosDB"
	TypeBlobTrigger     = "blobTrigger"
	TypeBlob            = "blob"
	TypeTimerTrigger    = "timerTrigger"
	TypeHTTPTrigger     = "httpTrigger"
	TypeHTTP            = "http"
)

// Binding directions.
const (
	DirectionIn    = "in"
	DirectionOut   = "out"
	DirectionInOut = "inout"
)

// ReturnName is the binding name that takes a handler's ReturnValue.
const ReturnName = "$return"

// Values of Binding fields.
const (
	CardinalityOne  = "one"
	CardinalityMany = "many"

	AuthAnonymous = "anonymous"
	AuthFunction  = "function"
	AuthAdmin     = "admin"

	DataTypeString = "string"
	DataTypeBinary = "binary"
	DataTypeStream = "stream"

	BlobSourceEventGrid = "EventGrid"
	BlobSourcePolling   = "LogsAndContainerScan"

	DefaultConsumerGroup           = "$Default"
	DefaultLeaseContainerName      = "leases"
	DefaultFeedPollDelay           = 5 * time.Second
	DefaultLeaseAcquireInterval    = 13 * time.Second
	DefaultLeaseExpirationInterval = 60 * time.Second
	DefaultLeaseRenewInterval      = 17 * time.Second
)

var triggerTypes = []string{TypeEventHubTrigger, TypeQueueTrigger, TypeCosmosDBTrigger, TypeBlobTrigger, TypeTimerTrigger, TypeHTTPTrigger}

var otherTypes = []string{TypeEventHub, TypeQueue, TypeCosmosDB, TypeBlob, TypeHTTP}

// directions lists the directions each binding type takes.
var directions = map[string][]string{
	TypeEventHubTrigger: {DirectionIn},
	TypeQueueTrigger:    {DirectionIn},
	TypeCosmosDBTrigger: {DirectionIn},
	TypeBlobTrigger:     {DirectionIn},
	TypeTimerTrigger:    {DirectionIn},
	TypeHTTPTrigger:     {DirectionIn},
	TypeEventHub:        {DirectionOut},
	TypeQueue:           {DirectionOut},
	TypeHTTP:            {DirectionOut},
	TypeCosmosDB:        {DirectionIn, DirectionOut},
	TypeBlob:            {DirectionIn, DirectionOut, DirectionInOut},
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}

// Binding is one entry of function.json's "bindings". Only the fields of its
// Type are set; strings have %settings% expanded and keep binding
// expressions in braces ({queueTrigger}, {Query.id}) as written.
type Binding struct {
	// Type is one of the Type constants, in its documented spelling.
	Type string
	// Direction is DirectionIn, DirectionOut or DirectionInOut.
	Direction string
	// Name is the key of the binding's value in the handler's Data or
	// Outputs; ReturnName for an output taken from ReturnValue.
	Name string
	// DataType is DataTypeString, DataTypeBinary, DataTypeStream, or "" when
	// not set (Azure ignores other values, and so does Sluice).
	DataType string
	// Connection names the app setting (or prefix of settings) that
	// connects the binding to its service; "" when not set. Cosmos DB's
	// 3.x name connectionStringSetting is read too.
	Connection string

	// eventHubTrigger, eventHub.

	// EventHubName is the hub (eventHubName, or path in Functions 1.x). When
	// the Connection setting is a connection string with an EntityPath, the
	// EntityPath wins, as on Azure.
	EventHubName string
	// ConsumerGroup is the trigger's consumer group (default "$Default").
	ConsumerGroup string
	// Cardinality is CardinalityOne (the default for function.json, as the
	// host's script binding provider has it) or CardinalityMany (batches).
	Cardinality string

	// queueTrigger, queue.

	// QueueName is the queue, lower-cased as Azure does when it holds no
	// binding expression.
	QueueName string

	// cosmosDBTrigger, cosmosDB. The 3.x names (collectionName,
	// leaseCollectionName...) are read when the 4.x ones are not given.

	// DatabaseName and ContainerName name the monitored or bound container.
	DatabaseName  string
	ContainerName string
	// LeaseConnection, LeaseDatabaseName and LeaseContainerName say where
	// the trigger keeps its leases (defaults: Connection, DatabaseName,
	// "leases").
	LeaseConnection    string
	LeaseDatabaseName  string
	LeaseContainerName string
	// LeaseContainerPrefix lets functions share one lease container.
	LeaseContainerPrefix string
	// CreateLeaseContainerIfNotExists creates the lease container.
	CreateLeaseContainerIfNotExists bool
	// LeasesContainerThroughput is the RU/s of a created lease container
	// (0 when not set).
	LeasesContainerThroughput int
	// MaxItemsPerInvocation bounds the documents of one invocation (0 when
	// not set).
	MaxItemsPerInvocation int
	// StartFromBeginning and StartFromTime say where a trigger with no
	// leases starts (not both); both unset means now.
	StartFromBeginning bool
	StartFromTime      time.Time
	// FeedPollDelay is the pause after a drained feed (feedPollDelay in
	// milliseconds; default 5s).
	FeedPollDelay time.Duration
	// LeaseAcquireInterval, LeaseExpirationInterval and LeaseRenewInterval
	// time the lease protocol (milliseconds in function.json; defaults 13s,
	// 60s, 17s).
	LeaseAcquireInterval    time.Duration
	LeaseExpirationInterval time.Duration
	LeaseRenewInterval      time.Duration
	// PreferredLocations are the regions to read from, in order (a
	// comma-separated string in function.json).
	PreferredLocations []string
	// ID, PartitionKey and SQLQuery select the documents of a cosmosDB
	// input; PartitionKey is also the key path of a container an output
	// creates.
	ID           string
	PartitionKey string
	SQLQuery     string
	// CreateIfNotExists and ContainerThroughput let a cosmosDB output
	// create its container.
	CreateIfNotExists   bool
	ContainerThroughput int

	// blobTrigger, blob.

	// Path is "container/blob-pattern", for instance "uploads/{name}".
	Path string
	// Source is the blob trigger's source: BlobSourcePolling (the default)
	// or BlobSourceEventGrid.
	Source string

	// timerTrigger.

	// Schedule is a six-field NCRONTAB expression or a TimeSpan, with
	// %settings% expanded.
	Schedule string
	// RunOnStartup fires the function when the host starts.
	RunOnStartup bool
	// UseMonitor is nil when not set (Azure: on when the interval is at
	// least a minute).
	UseMonitor *bool

	// httpTrigger.

	// AuthLevel is AuthAnonymous, AuthFunction (the default) or AuthAdmin.
	AuthLevel string
	// Methods are the accepted HTTP methods, upper-case; nil accepts all.
	Methods []string
	// Route is the route template after the route prefix (default: the
	// function name).
	Route string

	// Raw is the binding as written, member by member, after %settings%
	// expansion (as Azure's BindingMetadata.Raw): what a handler's payload
	// may need beyond the fields above.
	Raw map[string]json.RawMessage
}

// IsTrigger reports whether the binding is a trigger.
func (b Binding) IsTrigger() bool {
	return slices.Contains(triggerTypes, b.Type)
}

// canonicalType returns the documented spelling of a supported type, or "".
func canonicalType(t string) string {
	for _, c := range append(slices.Clone(triggerTypes), otherTypes...) {
		if strings.EqualFold(strings.TrimSpace(t), c) {
			return c
		}
	}
	return ""
}

// parseBinding reads one binding; fn is the function's name (the default
// route) and settings the app settings (for EntityPath).
func parseBinding(o *object, fn string, settings map[string]string) Binding {
	var b Binding
	r := o.r

	switch t, ok := o.str("type"); {
	case ok && canonicalType(t) != "":
		b.Type = canonicalType(t)
	case ok:
		r.errorf(o.field("type"), "%q is not supported; Sluice supports the triggers %s and the bindings %s",
			t, strings.Join(triggerTypes, ", "), strings.Join(otherTypes, ", "))
	case !o.has("type"):
		r.errorf(o.field("type"), "missing; write one of %s, %s", strings.Join(triggerTypes, ", "), strings.Join(otherTypes, ", "))
	}

	want := "\"in\" or \"out\""
	if allowed := directions[b.Type]; allowed != nil {
		want = "\"" + strings.Join(allowed, "\" or \"") + "\""
	}
	switch d, ok := o.str("direction"); {
	case ok && slices.Contains([]string{DirectionIn, DirectionOut, DirectionInOut}, strings.ToLower(strings.TrimSpace(d))):
		b.Direction = strings.ToLower(strings.TrimSpace(d))
		if allowed := directions[b.Type]; allowed != nil && !slices.Contains(allowed, b.Direction) {
			r.errorf(o.field("direction"), "%q is wrong for type %s; write %s", d, b.Type, want)
		}
	case ok:
		r.errorf(o.field("direction"), "%q is not a direction; write \"in\", \"out\" or \"inout\"", d)
	case !o.has("direction"):
		r.errorf(o.field("direction"), "missing; write %s", want)
	}

	switch n, ok := o.str("name"); {
	case ok && n == ReturnName:
		if b.Direction != "" && b.Direction != DirectionOut {
			r.errorf(o.field("name"), "%q is for output bindings only (direction \"out\")", ReturnName)
		}
		b.Name = n
	case ok && validBindingName(n):
		b.Name = n
	case ok:
		r.errorf(o.field("name"), "%q is not a valid binding name: it must start with a letter and hold only letters and digits (at most 128), or be %q", n, ReturnName)
	case !o.has("name"):
		r.errorf(o.field("name"), "missing; name the binding (the key of its value in the handler's Data or Outputs)")
	}

	if dt, ok := o.str("dataType"); ok {
		switch v := strings.ToLower(strings.TrimSpace(dt)); v {
		case DataTypeString, DataTypeBinary, DataTypeStream:
			b.DataType = v
		case "":
		default:
			r.warnf(o.field("dataType"), "%q is not string, binary or stream; ignored, as Azure does", dt)
		}
	}
	b.Connection, _ = o.str("connection", "connectionStringSetting")

	switch b.Type {
	case TypeEventHubTrigger, TypeEventHub:
		parseEventHubBinding(o, &b, settings)
	case TypeQueueTrigger, TypeQueue:
		parseQueueBinding(o, &b)
	case TypeCosmosDBTrigger:
		parseCosmosDBTrigger(o, &b)
	case TypeCosmosDB:
		parseCosmosDBBinding(o, &b)
	case TypeBlobTrigger, TypeBlob:
		parseBlobBinding(o, &b)
	case TypeTimerTrigger:
		parseTimerTrigger(o, &b)
	case TypeHTTPTrigger:
		parseHTTPTrigger(o, &b, fn)
	}
	return b
}

// validBindingName is Azure's rule: a letter, then letters and digits, at
// most 128 characters.
func validBindingName(n string) bool {
	if n == "" || len(n) > 128 {
		return false
	}
	for i, c := range n {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digit := c >= '0' && c <= '9'
		if !letter && (i == 0 || !digit) {
			return false
		}
	}
	return true
}

func parseEventHubBinding(o *object, b *Binding, settings map[string]string) {
	b.EventHubName, _ = o.str("eventHubName", "path")
	if entity := entityPath(settings, b.Connection); entity != "" {
		b.EventHubName = entity
	}
	if strings.TrimSpace(b.EventHubName) == "" {
		o.r.errorf(o.field("eventHubName"), "missing; name the event hub (or give an EntityPath in the connection string)")
	}
	if b.Type != TypeEventHubTrigger {
		return
	}
	b.ConsumerGroup = DefaultConsumerGroup
	if cg, ok := o.str("consumerGroup"); ok && strings.TrimSpace(cg) != "" {
		b.ConsumerGroup = cg
	}
	b.Cardinality = CardinalityOne
	if c, ok := o.str("cardinality"); ok {
		switch v := strings.ToLower(strings.TrimSpace(c)); v {
		case CardinalityOne, CardinalityMany:
			b.Cardinality = v
		default:
			o.r.errorf(o.field("cardinality"), "%q is not a cardinality; write \"one\" or \"many\"", c)
		}
	}
}

// entityPath returns the EntityPath of the connection string held by the
// setting named connection, or "".
func entityPath(settings map[string]string, connection string) string {
	if connection == "" {
		return ""
	}
	cs, ok := lookupSetting(settings, connection)
	if !ok {
		return ""
	}
	for part := range strings.SplitSeq(cs, ";") {
		k, v, ok := strings.Cut(part, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "EntityPath") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func parseQueueBinding(o *object, b *Binding) {
	verb := "reads"
	if b.Type == TypeQueue {
		verb = "writes to"
	}
	q := requireString(o, "name the queue the function "+verb, "queueName")
	if q == "" {
		return
	}
	if strings.ContainsAny(q, "{}") {
		if b.Type == TypeQueueTrigger {
			o.r.errorf(o.field("queueName"), "%q holds a binding expression; a trigger's queue name must be fixed (use %%SETTING%% to take it from a setting)", q)
			return
		}
		b.QueueName = q // resolved per invocation
		return
	}
	b.QueueName = strings.ToLower(q)
	if msg := checkQueueName(b.QueueName); msg != "" {
		o.r.errorf(o.field("queueName"), "%q is not a valid queue name: %s", q, msg)
	}
}

// checkQueueName applies Azure Storage's queue naming rules.
func checkQueueName(q string) string {
	if len(q) < 3 || len(q) > 63 {
		return "it must be 3 to 63 characters long"
	}
	for _, c := range q {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "use only letters, digits and '-'"
		}
	}
	if q[0] == '-' || q[len(q)-1] == '-' {
		return "it must start and end with a letter or digit"
	}
	if strings.Contains(q, "--") {
		return "it must not hold two '-' in a row"
	}
	return ""
}

// requireString reads a string member that must not be empty.
func requireString(o *object, what string, names ...string) string {
	s, ok := o.str(names...)
	if ok && strings.TrimSpace(s) != "" {
		return s
	}
	if ok || !o.has(names...) {
		o.r.errorf(o.field(names[0]), "missing; %s", what)
	}
	return ""
}

func parseCosmosDBCommon(o *object, b *Binding) {
	b.DatabaseName = requireString(o, "name the Cosmos DB database", "databaseName")
	b.ContainerName = requireString(o, "name the Cosmos DB container", "containerName", "collectionName")
	if s, ok := o.str("preferredLocations"); ok {
		for loc := range strings.SplitSeq(s, ",") {
			if loc = strings.TrimSpace(loc); loc != "" {
				b.PreferredLocations = append(b.PreferredLocations, loc)
			}
		}
	}
}

func parseCosmosDBTrigger(o *object, b *Binding) {
	parseCosmosDBCommon(o, b)
	b.LeaseConnection = b.Connection
	if s, ok := o.str("leaseConnection", "leaseConnectionStringSetting"); ok && s != "" {
		b.LeaseConnection = s
	}
	b.LeaseDatabaseName = b.DatabaseName
	if s, ok := o.str("leaseDatabaseName"); ok && s != "" {
		b.LeaseDatabaseName = s
	}
	b.LeaseContainerName = DefaultLeaseContainerName
	if s, ok := o.str("leaseContainerName", "leaseCollectionName"); ok && s != "" {
		b.LeaseContainerName = s
	}
	b.LeaseContainerPrefix, _ = o.str("leaseContainerPrefix", "leaseCollectionPrefix")
	b.CreateLeaseContainerIfNotExists, _ = o.boolean("createLeaseContainerIfNotExists", "createLeaseCollectionIfNotExists")
	b.LeasesContainerThroughput, _ = o.integer(0, math.MaxInt32, "leasesContainerThroughput", "leasesCollectionThroughput")
	b.MaxItemsPerInvocation, _ = o.integer(0, math.MaxInt32, "maxItemsPerInvocation")
	b.StartFromBeginning, _ = o.boolean("startFromBeginning")
	if s, ok := o.str("startFromTime"); ok && strings.TrimSpace(s) != "" {
		t, err := parseTime(s)
		switch {
		case err != nil:
			o.r.errorf(o.field("startFromTime"), "%v", err)
		case b.StartFromBeginning:
			o.r.errorf(o.field("startFromTime"), "cannot be used with startFromBeginning; keep one of them")
		default:
			b.StartFromTime = t
		}
	}
	durations := []struct {
		dst  *time.Duration
		name string
		def  time.Duration
	}{
		{&b.FeedPollDelay, "feedPollDelay", DefaultFeedPollDelay},
		{&b.LeaseAcquireInterval, "leaseAcquireInterval", DefaultLeaseAcquireInterval},
		{&b.LeaseExpirationInterval, "leaseExpirationInterval", DefaultLeaseExpirationInterval},
		{&b.LeaseRenewInterval, "leaseRenewInterval", DefaultLeaseRenewInterval},
	}
	for _, d := range durations {
		*d.dst = d.def
		if v, ok := o.millis(d.name); ok {
			*d.dst = v
		}
	}
}

func parseCosmosDBBinding(o *object, b *Binding) {
	parseCosmosDBCommon(o, b)
	b.ID, _ = o.str("id")
	b.PartitionKey, _ = o.str("partitionKey")
	b.SQLQuery, _ = o.str("sqlQuery")
	b.CreateIfNotExists, _ = o.boolean("createIfNotExists")
	b.ContainerThroughput, _ = o.integer(0, math.MaxInt32, "containerThroughput", "collectionThroughput")
}

func parseBlobBinding(o *object, b *Binding) {
	b.Path = requireString(o, `give "container/blob-pattern", like "uploads/{name}"`, "path")
	if b.Path != "" {
		container, _, _ := strings.Cut(strings.TrimPrefix(b.Path, "/"), "/")
		switch {
		case container == "":
			o.r.errorf(o.field("path"), "%q has no container; write \"container/blob-pattern\", like \"uploads/{name}\"", b.Path)
		case b.Type == TypeBlobTrigger && strings.ContainsAny(container, "{}"):
			o.r.errorf(o.field("path"), "%q: a trigger's container must be fixed, not a binding expression", b.Path)
		}
	}
	if b.Type != TypeBlobTrigger {
		return
	}
	b.Source = BlobSourcePolling
	if s, ok := o.str("source"); ok && strings.TrimSpace(s) != "" {
		switch {
		case strings.EqualFold(strings.TrimSpace(s), BlobSourceEventGrid):
			b.Source = BlobSourceEventGrid
		case strings.EqualFold(strings.TrimSpace(s), BlobSourcePolling):
		default:
			o.r.errorf(o.field("source"), "%q is not a blob trigger source; write %q or %q", s, BlobSourcePolling, BlobSourceEventGrid)
		}
	}
}

func parseTimerTrigger(o *object, b *Binding) {
	b.Schedule = strings.TrimSpace(requireString(o, `give an NCRONTAB expression with seconds, like "0 */5 * * * *", or a TimeSpan like "00:05:00"`, "schedule"))
	b.RunOnStartup, _ = o.boolean("runOnStartup")
	if v, ok := o.boolean("useMonitor"); ok {
		b.UseMonitor = &v
	}
}

func parseHTTPTrigger(o *object, b *Binding, fn string) {
	b.AuthLevel = AuthFunction
	if s, ok := o.str("authLevel"); ok {
		switch v := strings.ToLower(strings.TrimSpace(s)); v {
		case AuthAnonymous, AuthFunction, AuthAdmin:
			b.AuthLevel = v
		default:
			o.r.errorf(o.field("authLevel"), "%q is not an auth level; write %q, %q or %q", s, AuthAnonymous, AuthFunction, AuthAdmin)
		}
	}
	if methods, ok := o.strs("methods"); ok {
		for i, m := range methods {
			up := strings.ToUpper(strings.TrimSpace(m))
			switch {
			case !slices.Contains(httpMethods, up):
				o.r.errorf(o.field("methods")+"["+strconv.Itoa(i)+"]", "%q is not an HTTP method; write one of %s", m, strings.Join(httpMethods, ", "))
			case !slices.Contains(b.Methods, up):
				b.Methods = append(b.Methods, up)
			}
		}
	}
	b.Route = fn
	if s, ok := o.str("route"); ok && strings.TrimSpace(s) != "" {
		b.Route = strings.TrimSpace(s)
	}
}
