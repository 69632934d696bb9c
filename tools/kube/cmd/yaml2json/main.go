// Command yaml2json reads a stream of YAML documents (e.g. `helm template`
// output) on stdin and writes one JSON array of the non-empty documents on
// stdout. Kubernetes' own YAML handling: no field is renamed or dropped, so the
// tests send manifests to the API server exactly as helm rendered them.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func main() {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(os.Stdin))
	docs := []json.RawMessage{}
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fail(err)
		}
		converted, err := yaml.YAMLToJSON(doc)
		if err != nil {
			fail(fmt.Errorf("document %d: %w", len(docs)+1, err))
		}
		converted = bytes.TrimSpace(converted)
		if len(converted) == 0 || bytes.Equal(converted, []byte("null")) {
			continue
		}
		docs = append(docs, converted)
	}
	out, err := json.Marshal(docs)
	if err != nil {
		fail(err)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "yaml2json:", err)
	os.Exit(1)
}
