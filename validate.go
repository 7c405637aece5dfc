package sluice

import (
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
)

// The Validate functions report whether a name can name a resource, with
// the error Start would give for it (nil when it can). Start checks every
// declaration; they let a program that builds declarations from a file
// of its own point at the line or field that is wrong before it declares
// anything.

// ValidateHubName checks a hub's name: 1-64 letters, digits, '-' or '_',
// starting with a letter or digit.
func ValidateHubName(name string) error { return hub.ValidateName(name) }

// ValidateConsumerGroup checks a consumer group's name: 1-50 letters,
// digits, '-' or '_', optionally after a leading '$' (as in "$Default").
func ValidateConsumerGroup(name string) error { return hub.ValidateGroup(name) }

// ValidateQueueName checks a queue's name: 1-64 letters, digits, '-' or
// '_', starting with a letter or digit.
func ValidateQueueName(name string) error { return queue.ValidateName(name) }

// ValidateContainerName checks a document container's name: 1-64
// letters, digits, '-' or '_', starting with a letter or digit.
func ValidateContainerName(name string) error { return docstore.ValidateName(name) }

// BlobPathParams checks a blob trigger's path (BlobTrigger.Path) and
// returns the names of its parameters, in order ("uploads/{folder}/{name}.json":
// folder and name). A path without a '/' names a whole blob container.
func BlobPathParams(path string) ([]string, error) {
	p, err := host.ParseBlobPath(path)
	if err != nil {
		return nil, err
	}
	return p.Params, nil
}
