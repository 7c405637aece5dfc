package gateway

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/sluicehq/sluice/internal/auth"
)

// Authorizer decides whether a request may do what its route needs. It
// returns nil to allow it, or an error that says why not (an *auth.Error
// carries the status).
type Authorizer func(r *http.Request, need auth.Need) error

// need says what a route needs: a verb, and for resource verbs the path
// value naming the resource.
type need struct {
	verb  string
	param string
}

// routeNeeds is what each route needs, by the route's name. A route
// missing here is a programming error: route panics, so no route is ever
// served without a decision.
var routeNeeds = map[string]need{
	"healthz": {},
	"readyz":  {},
	"metrics": {verb: auth.VerbRead},

	"overview": {verb: auth.VerbRead},

	"scale":          {verb: auth.VerbRead},
	"scale.function": {verb: auth.VerbRead},

	"dr.status":   {verb: auth.VerbRead},
	"dr.failover": {verb: auth.VerbAdmin},

	"hubs.list":     {verb: auth.VerbRead},
	"hubs.create":   {verb: auth.VerbAdmin},
	"hubs.describe": {verb: auth.VerbRead},
	"hubs.delete":   {verb: auth.VerbAdmin},
	"hubs.publish":  {verb: auth.VerbPublish, param: "hub"},
	"hubs.read":     {verb: auth.VerbRead},
	"hubs.lag":      {verb: auth.VerbRead},
	"hubs.replay":   {verb: auth.VerbReplay, param: "hub"},

	"queues.list":     {verb: auth.VerbRead},
	"queues.create":   {verb: auth.VerbAdmin},
	"queues.describe": {verb: auth.VerbRead},
	"queues.delete":   {verb: auth.VerbAdmin},
	"queues.send":     {verb: auth.VerbSend, param: "queue"},
	"queues.receive":  {verb: auth.VerbReceive, param: "queue"},
	"queues.complete": {verb: auth.VerbReceive, param: "queue"},
	"queues.abandon":  {verb: auth.VerbReceive, param: "queue"},
	"queues.renew":    {verb: auth.VerbReceive, param: "queue"},
	"queues.peek":     {verb: auth.VerbRead},
	"queues.purge":    {verb: auth.VerbAdmin},

	"deadletters.list":    {verb: auth.VerbRead},
	"deadletters.show":    {verb: auth.VerbRead},
	"deadletters.redrive": {verb: auth.VerbDeadLetters},
	"deadletters.purge":   {verb: auth.VerbDeadLetters},

	"containers.list":     {verb: auth.VerbRead},
	"containers.create":   {verb: auth.VerbAdmin},
	"containers.describe": {verb: auth.VerbRead},
	"containers.delete":   {verb: auth.VerbAdmin},
	"docs.create":         {verb: auth.VerbDocs, param: "container"},
	"docs.upsert":         {verb: auth.VerbDocs, param: "container"},
	"docs.bulk":           {verb: auth.VerbDocs, param: "container"},
	"docs.read":           {verb: auth.VerbRead},
	"docs.replace":        {verb: auth.VerbDocs, param: "container"},
	"docs.patch":          {verb: auth.VerbDocs, param: "container"},
	"docs.delete":         {verb: auth.VerbDocs, param: "container"},
	"docs.query":          {verb: auth.VerbRead},
	"docs.feed":           {verb: auth.VerbRead},

	"blobs.containers.list":   {verb: auth.VerbRead},
	"blobs.containers.create": {verb: auth.VerbAdmin},
	"blobs.list":              {verb: auth.VerbRead},
	"blobs.containers.delete": {verb: auth.VerbAdmin},
	"blobs.put":               {verb: auth.VerbBlobs, param: "container"},
	"blobs.get":               {verb: auth.VerbRead},
	"blobs.head":              {verb: auth.VerbRead},
	"blobs.delete":            {verb: auth.VerbBlobs, param: "container"},

	"breakers.list":  {verb: auth.VerbRead},
	"breakers.show":  {verb: auth.VerbRead},
	"breakers.open":  {verb: auth.VerbBreakers},
	"breakers.close": {verb: auth.VerbBreakers},

	"pipelines.list":   {verb: auth.VerbRead},
	"pipelines.status": {verb: auth.VerbRead},
	"pipelines.create": {verb: auth.VerbAdmin},
	"pipelines.delete": {verb: auth.VerbAdmin},
	// A backfill runs the caller's SQL condition on the source database
	// (read only): an admin's.
	"pipelines.backfill": {verb: auth.VerbAdmin},
	"pipelines.replay":   {verb: auth.VerbReplay},
	"pipelines.pause":    {verb: auth.VerbReplay},
	"pipelines.resume":   {verb: auth.VerbReplay},

	// A partner's own routes take the partner's token, checked by the
	// handler (partner.Registry.Authenticate), not an API key.
	"partners.messages.send":       {},
	"partners.messages.sendBatch":  {},
	"partners.messages.rejections": {},
	"partners.list":                {verb: auth.VerbRead},
	"partners.create":              {verb: auth.VerbAdmin},
	"partners.describe":            {verb: auth.VerbRead},
	"partners.update":              {verb: auth.VerbAdmin},
	"partners.delete":              {verb: auth.VerbAdmin},
	"partners.tokens.create":       {verb: auth.VerbAdmin},
	"partners.tokens.revoke":       {verb: auth.VerbAdmin},
	"partners.rejections":          {verb: auth.VerbRead},
	"partners.endpoints.put":       {verb: auth.VerbAdmin},
	"partners.endpoints.delete":    {verb: auth.VerbAdmin},
	"partners.deliveries.log":      {verb: auth.VerbRead},
	"deliveries.list":              {verb: auth.VerbRead},
	"deliveries.retry":             {verb: auth.VerbDeadLetters},
	"deliveries.cancel":            {verb: auth.VerbDeadLetters},
	"partners.types.list":          {verb: auth.VerbRead},
	"partners.types.put":           {verb: auth.VerbAdmin},
	"partners.types.create":        {verb: auth.VerbAdmin},
	"partners.types.delete":        {verb: auth.VerbAdmin},
	"types.list":                   {verb: auth.VerbRead},
	"types.put":                    {verb: auth.VerbAdmin},
	"types.create":                 {verb: auth.VerbAdmin},
	"types.delete":                 {verb: auth.VerbAdmin},

	"keys.list":   {verb: auth.VerbAdmin},
	"keys.create": {verb: auth.VerbAdmin},
	"keys.revoke": {verb: auth.VerbAdmin},
}

func needOf(name string) need {
	n, ok := routeNeeds[name]
	if !ok {
		panic(fmt.Sprintf("gateway: route %s has no entry in routeNeeds", name))
	}
	return n
}

func (n need) of(r *http.Request) auth.Need {
	out := auth.Need{Verb: n.verb}
	if n.param != "" {
		out.Resource = r.PathValue(n.param)
	}
	return out
}

// Route is one route of the API, for tests and documentation.
type Route struct {
	Pattern string
	Name    string
	// Verb is what the route needs ("" for none); Param names the path
	// value that is the resource, for resource verbs.
	Verb, Param string
}

// Routes lists the server's routes, sorted by pattern.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	copy(out, s.routes)
	sort.Slice(out, func(i, j int) bool { return out[i].Pattern < out[j].Pattern })
	return out
}
