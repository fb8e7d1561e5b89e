import { writeFile } from 'node:fs/promises';
import { openapiSpec, OPENAPI_FILE } from '../src/api/openapi-spec.ts';

// `npm run openapi`: regenerates openapi/openapi.json from the routes (a test fails when they drift).
await writeFile(OPENAPI_FILE, `${JSON.stringify(await openapiSpec(), null, 2)}\n`);
console.log(`wrote ${OPENAPI_FILE}`);
process.exit(0);
