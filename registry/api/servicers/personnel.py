"""The personnel service: people and their sealed personal data."""

from __future__ import annotations

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.auth import caller
from registry.api.conversions import page, person_pb, personal_data_from, personal_data_pb
from registry.api.servicers.base import ServicerBase
from registry.workflows import people


class PersonnelServicer(ServicerBase, rpc.PersonnelServiceServicer):
    @handler
    def EnrollPerson(
        self, request: pb.EnrollPersonRequest, context: grpc.ServicerContext
    ) -> pb.EnrollPersonResponse:
        person = people.enroll_person(
            self.ctx,
            caller(),
            organization_id=request.organization_id,
            data=personal_data_from(request.personal_data),
            idempotency_key=request.idempotency_key,
        )
        return pb.EnrollPersonResponse(person=person_pb(person))

    @handler
    def GetPerson(self, request: pb.GetPersonRequest, context: grpc.ServicerContext) -> pb.GetPersonResponse:
        return pb.GetPersonResponse(person=person_pb(people.read_person(self.ctx, caller(), request.id)))

    @handler
    def ListPeople(
        self, request: pb.ListPeopleRequest, context: grpc.ServicerContext
    ) -> pb.ListPeopleResponse:
        listed = people.list_people(
            self.ctx, caller(), organization_id=request.organization_id, page=page(request.page)
        )
        return pb.ListPeopleResponse(
            people=[person_pb(p) for p in listed.items], next_page_token=listed.next_page_token
        )

    @handler
    def ReadPersonalData(
        self, request: pb.ReadPersonalDataRequest, context: grpc.ServicerContext
    ) -> pb.ReadPersonalDataResponse:
        data = people.read_personal_data(
            self.ctx, caller(), person_id=request.person_id, purpose=request.purpose
        )
        return pb.ReadPersonalDataResponse(personal_data=personal_data_pb(data))

    @handler
    def SetAffiliation(
        self, request: pb.SetAffiliationRequest, context: grpc.ServicerContext
    ) -> pb.SetAffiliationResponse:
        person, suspended = people.set_affiliation(
            self.ctx,
            caller(),
            person_id=request.person_id,
            organization_id=request.organization_id,
            reason=request.reason,
        )
        return pb.SetAffiliationResponse(person=person_pb(person), suspended_credentials=suspended)
