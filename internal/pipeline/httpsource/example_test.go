package httpsource_test

import (
	"context"
	"net/http"
	"os"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/httpsource"
)

// A SharePoint list's items through Microsoft Graph's delta query, with a
// token that expires: HeaderFunc gives a fresh one for every request.
func ExampleNew() {
	src, err := httpsource.New(httpsource.Config{
		URL:   "https://graph.microsoft.com/v1.0/sites/contoso.sharepoint.com,1,2/lists/orders/items/delta?expand=fields",
		Table: "sharepoint.orders",
		HeaderFunc: func(ctx context.Context) (http.Header, error) {
			// An OAuth client-credentials token source in real use.
			return http.Header{"Authorization": {"Bearer " + os.Getenv("GRAPH_TOKEN")}}, nil
		},
	})
	if err != nil {
		panic(err)
	}
	// The pipeline runs it from its last staged position.
	var _ pipeline.Source = src
}
