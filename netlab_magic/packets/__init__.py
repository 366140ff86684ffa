"""The packet tools: follow one packet through netfilter (trace), capture an interface, read
conntrack, send single probes. They work on namespaces by name, below the Lab API that offers them."""
