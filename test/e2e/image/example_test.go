package image_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"log"

	"github.com/strata-nri/strata/test/e2e/image"
)

func ExampleWriteArchive() {
	var buf bytes.Buffer
	err := image.WriteArchive(&buf, image.Options{
		Ref: "strata.local/e2e/hello:1",
		Files: []image.File{
			{Path: "/etc/motd", Data: []byte("hello\n")},
			{Path: "/bin/sh", Linkname: "busybox"},
		},
		Cmd: []string{"/bin/sh"},
	})
	if err != nil {
		log.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if len(hdr.Name) > 13 && hdr.Name[:13] == "blobs/sha256/" {
			fmt.Println("blobs/sha256/<digest>")
			continue
		}
		fmt.Println(hdr.Name)
	}
	// Output:
	// blobs/
	// blobs/sha256/
	// oci-layout
	// blobs/sha256/<digest>
	// blobs/sha256/<digest>
	// blobs/sha256/<digest>
	// index.json
	// manifest.json
}
