module nb-cluster-relay/bench/loadgen

go 1.22
