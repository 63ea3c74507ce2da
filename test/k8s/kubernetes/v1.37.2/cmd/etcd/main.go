// Command etcd is the etcd server Kubernetes v1.37.2 pins (go.etcd.io/etcd
// v3.7), built in the same module so its version follows the API server's.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
