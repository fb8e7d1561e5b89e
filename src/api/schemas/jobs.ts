import { Type } from 'typebox';
import { JobRequestSchema } from '../../queue/job-schemas.ts';
import { JobViewSchema } from '../../queue/job-view.ts';

export const JobSchema = Type.Object(JobViewSchema.properties, { $id: 'Job', title: 'Job' });
export const CreateJobBody = JobRequestSchema;
export const JobParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
export const ListJobsQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  offset: Type.Integer({ minimum: 0, default: 0 }),
});
export const JobListSchema = Type.Object({
  items: Type.Array(Type.Ref('Job')),
  total: Type.Integer(),
  limit: Type.Integer(),
  offset: Type.Integer(),
});
