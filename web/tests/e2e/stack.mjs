// Real-stack suite: placeholder until mcs-api is merged.
export async function runStack() { return 0 }
