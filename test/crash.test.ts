import { sinkChaosSuite } from './support/chaos.ts';

// Entries a killed consumer held are claimed by a differently named successor after 500 ms.
sinkChaosSuite('redis streams', { env: async () => ({}), claimIdleMs: 500 });
